"""The file store contract on real Cassandra (chunked blobs)."""

import pytest

from services.storage.files_cassandra import CassandraFileStore
from tests.contracts.files_contract import FileStoreContract

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def files(migrated):
    store = CassandraFileStore(migrated)
    await store.start()
    yield store
    await store.close()


class TestCassandraFiles(FileStoreContract):
    pass
