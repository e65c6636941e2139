"""SQLite ``FileStore`` for the single-node mode (bytes in one row; the size cap bounds it)."""

from __future__ import annotations

import sqlite3

from services.storage.files import StoredFile
from services.storage.sqlite_io import SqliteThread

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    file_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    name TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""


class SqliteFileStore:
    def __init__(self, path: str) -> None:
        self._db = SqliteThread(path, SCHEMA, "files")
        self._run = self._db.run

    async def start(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def put(self, meta: StoredFile, data: bytes) -> None:
        row = (meta.id, meta.room_id, meta.owner_id, meta.name, meta.mime_type, meta.size, data)

        def insert(db: sqlite3.Connection) -> None:
            with db:
                db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", row)

        await self._run(insert)

    async def get(self, file_id: str) -> tuple[StoredFile, bytes] | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT file_id, room_id, owner_id, name, mime_type, size, data FROM files "
                "WHERE file_id=?",
                (file_id,),
            ).fetchone()
        )
        if row is None:
            return None
        return StoredFile(*row[:6]), bytes(row[6])

    async def meta(self, file_id: str) -> StoredFile | None:
        """The metadata columns only: a membership check never reads the bytes."""
        row = await self._run(
            lambda db: db.execute(
                "SELECT file_id, room_id, owner_id, name, mime_type, size FROM files "
                "WHERE file_id=?",
                (file_id,),
            ).fetchone()
        )
        return StoredFile(*row) if row else None
