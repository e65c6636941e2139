"""The ``UserStore`` contract on real Cassandra; racing gateways and the table layout."""

import asyncio

import pytest

from services.common.errors import Unavailable
from services.storage.cassandra_io import connect, execute
from services.storage.users import UsernameTaken
from services.storage.users_cassandra import CassandraUserStore
from tests.contracts.users_contract import UserStoreContract, make_user, name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def users(migrated):
    s = CassandraUserStore(migrated)
    await s.start()
    yield s
    await s.close()


class TestCassandraUsers(UserStoreContract):
    pass


async def test_two_gateways_racing_for_one_name_have_one_winner(migrated, users):
    other = CassandraUserStore(migrated)  # a second driver connection, like a second pod
    await other.start()
    try:
        username = name("pods")
        attempts = [make_user(username, f"bcrypt-sha256${i}") for i in range(6)]
        stores = [users, other] * 3
        results = await asyncio.gather(
            *(s.create(u) for s, u in zip(stores, attempts, strict=True)), return_exceptions=True
        )
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, UsernameTaken) for r in results if r is not None)
        winner = next(u for u, r in zip(attempts, results, strict=True) if r is None)
        assert await other.by_username(username.upper()) == winner
        assert await users.by_id(winner.user_id) == winner
    finally:
        await other.close()


async def test_rows_land_in_both_tables_keyed_as_documented(migrated, users):
    user = make_user(name("Layout"))
    await users.create(user)
    cluster, session = await connect(migrated, migrated.cassandra_keyspace)
    try:
        by_name = list(
            await execute(
                session,
                "SELECT user_id, username FROM users_by_name WHERE username_key = %s",
                (user.username.lower(),),
            )
        )
        by_id = list(
            await execute(session, "SELECT username FROM users WHERE user_id = %s", (user.user_id,))
        )
    finally:
        await asyncio.to_thread(cluster.shutdown)
    assert [(r[0], r[1]) for r in by_name] == [(user.user_id, user.username)]
    assert [r[0] for r in by_id] == [user.username]


async def test_not_started_is_unavailable_not_a_crash(migrated):
    store = CassandraUserStore(migrated)
    with pytest.raises(Unavailable):
        await store.by_username("alice")
    with pytest.raises(Unavailable):
        await store.create(make_user(name()))
    assert not await store.healthy()
