"""One contract for every ``FileStore`` adapter; subclasses provide ``files``."""

from __future__ import annotations

import os

from services.storage.files import StoredFile, new_file_id


class FileStoreContract:
    async def test_put_then_get_returns_the_same_bytes(self, files):
        data = os.urandom(700 * 1024 + 3)  # several Cassandra chunks, not a multiple
        meta = StoredFile(new_file_id(), "room", "owner", "a b.png", "image/png", len(data))
        await files.put(meta, data)
        got = await files.get(meta.id)
        assert got is not None and got[1] == data and got[0] == meta
        assert await files.meta(meta.id) == meta

    async def test_unknown_file_is_none(self, files):
        assert await files.get(new_file_id()) is None
        assert await files.meta(new_file_id()) is None
