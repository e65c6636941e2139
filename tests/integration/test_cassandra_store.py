"""The store contract on real Cassandra, and the migration command."""

import pytest

from services.persistence import migrate
from services.storage.cassandra_io import connect, execute
from services.storage.messages_cassandra import CassandraMessageStore
from tests.contracts.store_contract import MessageStoreContract

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def store(migrated):
    s = CassandraMessageStore(migrated)
    await s.start()
    yield s
    await s.close()


class TestCassandraStore(MessageStoreContract):
    pass


async def test_migrations_are_recorded_and_rerunning_is_a_no_op(migrated):
    assert await migrate.migrate_cassandra(migrated) == []
    cluster, session = await connect(migrated, migrated.cassandra_keyspace)
    try:
        rows = await execute(session, "SELECT version, name FROM schema_migrations")
        versions = sorted((r[0], r[1]) for r in rows)
        assert versions == [(v, n) for v, n, _ in migrate.migrations()]
    finally:
        cluster.shutdown()
