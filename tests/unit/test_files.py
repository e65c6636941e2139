import pytest

from services.common.errors import ChatError, Code
from services.persistence.files import MemoryFileStore, parse_upload
from services.persistence.files_sqlite import SqliteFileStore
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
