"""The port contracts on the in-process adapters (memory, SQLite)."""

import pytest

from services.storage.messages import MemoryMessageStore
from services.storage.messages_sqlite import SqliteMessageStore
from services.storage.presence import MemoryPresenceStore
from tests.contracts.presence_contract import (
    AnnouncementContract,
    MembershipContract,
    PresenceStoreContract,
    ScopedContract,
)
from tests.contracts.store_contract import MessageStoreContract, make_messages


class TestMemoryStore(MessageStoreContract):
    @pytest.fixture
    async def store(self):
        return MemoryMessageStore()


class TestSqliteStore(MessageStoreContract):
    @pytest.fixture
    async def store(self, tmp_path):
        s = SqliteMessageStore(str(tmp_path / "db" / "parley.db"))
        await s.start()
        yield s
        await s.close()


async def test_sqlite_history_survives_a_restart(tmp_path):
    path = str(tmp_path / "parley.db")
    first = SqliteMessageStore(path)
    await first.start()
    msgs = make_messages("lobby", 3)
    await first.append(msgs[0])
    await first.write(msgs[1:])
    await first.close()
    second = SqliteMessageStore(path)
    await second.start()
    assert [m.id for m in await second.recent("lobby", 50)] == [m.id for m in msgs]
    await second.close()


class TestMemoryPresence(
    PresenceStoreContract, MembershipContract, AnnouncementContract, ScopedContract
):
    @pytest.fixture
    async def presence(self):
        return MemoryPresenceStore()

    @pytest.fixture
    def presence_with(self):
        async def make(grace_ms: int, scope: str = "all"):
            store = MemoryPresenceStore(grace_ms, scope)
            heard = []

            async def emit(event, data, namespace, skip_sid=None, room=None):
                heard.append((event, data["userId"], room))

            store.bind(emit)
            return store, lambda: list(heard)

        return make
