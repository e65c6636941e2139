"""Cassandra ``FileStore``: metadata in ``files``, bytes in 256 KiB ``file_chunks`` rows.

Chunks are written first and the metadata row last, so a file is visible only once whole.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from cassandra.cluster import Session

from services.common.errors import Unavailable
from services.storage.cassandra_io import CassandraAdapter
from services.storage.files import StoredFile

CHUNK_BYTES = 256 * 1024


class CassandraFileStore(CassandraAdapter):
    async def _prepare(self, session: Session, ks: str) -> None:
        prepare = session.prepare
        self._put_chunk = await asyncio.to_thread(
            prepare, f"INSERT INTO {ks}.file_chunks (file_id, chunk, data) VALUES (?, ?, ?)"
        )
        self._put_meta = await asyncio.to_thread(
            prepare,
            f"INSERT INTO {ks}.files (file_id, room_id, owner_id, name, mime_type, size, chunks, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        self._get_meta = await asyncio.to_thread(
            prepare,
            f"SELECT file_id, room_id, owner_id, name, mime_type, size, chunks FROM {ks}.files "
            "WHERE file_id = ?",
        )
        self._get_chunks = await asyncio.to_thread(
            prepare, f"SELECT chunk, data FROM {ks}.file_chunks WHERE file_id = ?"
        )

    async def put(self, meta: StoredFile, data: bytes) -> None:
        chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
        await asyncio.gather(
            *(self._q(self._put_chunk, (meta.id, n, c)) for n, c in enumerate(chunks))
        )
        now = dt.datetime.now(dt.UTC)
        await self._q(
            self._put_meta,
            (
                meta.id,
                meta.room_id,
                meta.owner_id,
                meta.name,
                meta.mime_type,
                meta.size,
                len(chunks),
                now,
            ),
        )

    async def meta(self, file_id: str) -> StoredFile | None:
        rows = await self._q(self._get_meta, (file_id,))
        return StoredFile(*rows[0][:6]) if rows else None

    async def get(self, file_id: str) -> tuple[StoredFile, bytes] | None:
        rows = await self._q(self._get_meta, (file_id,))
        if not rows:
            return None
        meta, expected = StoredFile(*rows[0][:6]), rows[0][6]
        chunks = await self._q(self._get_chunks, (file_id,))
        if len(chunks) != expected:
            raise Unavailable(f"file {file_id}: {len(chunks)} of {expected} chunks readable")
        return meta, b"".join(bytes(c[1]) for c in sorted(chunks))
