import pytest

from services.common.errors import ChatError, Code
from services.storage.files import (
    MemoryFileStore,
    StoredFile,
    mime_allowed,
    parse_upload,
    served_type,
)
from services.storage.files_sqlite import SqliteFileStore
from tests.contracts.files_contract import FileStoreContract

TYPES = "image/*,text/plain"


def test_upload_rules():
    ok = parse_upload(
        {"roomId": "r", "file": b"x", "fileName": "../a.png", "mimeType": "Image/PNG"}, 10, TYPES
    )
    assert (ok.name, ok.mime_type, ok.data) == (".._a.png", "image/png", b"x")
    with pytest.raises(ChatError) as big:
        parse_upload(
            {"roomId": "r", "file": b"x" * 11, "fileName": "a", "mimeType": "text/plain"}, 10, TYPES
        )
    assert big.value.code is Code.TOO_LARGE and big.value.ack()["error"] == "File too large"
    for bad in (
        None,
        {"roomId": "r"},
        {"roomId": "r", "file": "text", "fileName": "a", "mimeType": "text/plain"},
        {"roomId": "r", "file": b"x", "fileName": "", "mimeType": "text/plain"},
        {"roomId": "r", "file": b"x", "fileName": "a", "mimeType": "text/html"},
        {"roomId": "r", "file": b"", "fileName": "a", "mimeType": "text/plain"},
    ):
        with pytest.raises(ChatError) as err:
            parse_upload(bad, 10, TYPES)
        assert err.value.code is Code.INVALID_MESSAGE


class TestMemoryFiles(FileStoreContract):
    @pytest.fixture
    async def files(self):
        return MemoryFileStore()


class TestSqliteFiles(FileStoreContract):
    @pytest.fixture
    async def files(self, tmp_path):
        store = SqliteFileStore(str(tmp_path / "f.db"))
        await store.start()
        yield store
        await store.close()


@pytest.mark.parametrize(
    "mime",
    [
        "image/png\r\nX-Injected: 1",
        "image/png\n",
        "image/../text/html",
        "image/",
        "/png",
        "image/png; charset=x",
        "image/svg+xml",  # active content: a wildcard never allows it
        "IMAGE/SVG+XML",
    ],
)
def test_mime_types_must_be_rfc6838_tokens_and_wildcards_skip_active_types(mime):
    with pytest.raises(ChatError) as err:
        parse_upload({"roomId": "r", "file": b"x", "fileName": "a", "mimeType": mime}, 10, TYPES)
    assert err.value.code is Code.INVALID_MESSAGE


def test_active_types_only_by_exact_entry_and_served_as_octet_stream():
    assert mime_allowed("image/svg+xml", "image/svg+xml")
    assert not mime_allowed("image/svg+xml", "*/*,image/*")
    assert mime_allowed("application/x-thing", "*/*")
    assert served_type("image/svg+xml") == "application/octet-stream"
    assert served_type("image/png\r\nX: y") == "application/octet-stream"  # stored before
    assert served_type("image/png") == "image/png"


async def test_sqlite_metadata_never_reads_the_bytes(tmp_path):
    store = SqliteFileStore(str(tmp_path / "m.db"))
    await store.start()
    try:
        meta = StoredFile("f1", "room", "owner", "a.bin", "application/octet-stream", 3)
        await store.put(meta, b"abc")

        async def no_bytes(file_id):
            raise AssertionError("meta() read the whole file")

        store.get = no_bytes
        assert await store.meta("f1") == meta
        assert await store.meta("missing") is None
    finally:
        await store.close()


async def test_a_sqlite_store_opens_again_after_a_close(tmp_path):
    """A start that failed is retried after close() (bootstrap._start_forever): the store
    must open again, not fail forever on a shut-down thread."""
    store = SqliteFileStore(str(tmp_path / "again.db"))
    await store.start()
    await store.close()
    await store.start()
    try:
        meta = StoredFile("f2", "room", "owner", "b.bin", "application/octet-stream", 1)
        await store.put(meta, b"x")
        assert await store.meta("f2") == meta
    finally:
        await store.close()
