"""SQLite ``FileStore`` for the single-node mode (bytes in one row; the size cap bounds it)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from services.common.errors import Unavailable

from .files import StoredFile

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
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-files")

    async def _run(self, fn):
        def call():
            if self._db is None:
                raise sqlite3.OperationalError("file store not started")
            return fn(self._db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        except sqlite3.Error as exc:
            raise Unavailable(f"sqlite: {exc}") from exc

    async def start(self) -> None:
        def open_db() -> sqlite3.Connection:
            os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
            return db

        self._db = await asyncio.get_running_loop().run_in_executor(self._thread, open_db)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
        self._thread.shutdown(wait=False)

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
        found = await self.get(file_id)
        return found[0] if found else None
