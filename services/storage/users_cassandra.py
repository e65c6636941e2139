"""Cassandra ``UserStore`` (cluster mode): unique names by a lightweight transaction.

Layout (migrations/0002): ``users_by_name`` keyed by the lower-cased username, ``users`` keyed
by user id. ``create`` first claims the name with ``INSERT ... IF NOT EXISTS`` (Paxos at
``LOCAL_SERIAL``, committed at ``LOCAL_QUORUM``): of racing gateways exactly one is applied.
Then it writes the ``users`` row. If that second write fails, it tries to release the claim
(``DELETE ... IF user_id = ?``) and raises ``Unavailable``. If the release fails too, the name
stays claimed and login still works, because it reads only ``users_by_name``. Reads use
``LOCAL_QUORUM``, so a user registered on one gateway can log in on any other right away.

The store has its own driver connection, separate from the message store's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Session

from services.common.errors import Unavailable
from services.common.settings import Settings
from services.storage.cassandra_io import CassandraAdapter
from services.storage.users import User, UsernameTaken, username_key

log = logging.getLogger("parley.users")
_COLUMNS = "user_id, username, password_hash, created_at"


def _user(rows: list[Any]) -> User | None:
    if not rows:
        return None
    r = rows[0]
    created: dt.datetime | None = r[3]
    created_ms = int(created.replace(tzinfo=dt.UTC).timestamp() * 1000) if created else 0
    return User(user_id=r[0], username=r[1], password_hash=r[2], created_ms=created_ms)


class CassandraUserStore(CassandraAdapter):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # prepared statements (cassandra-driver ships no types)
        self._claim: Any = None
        self._release: Any = None
        self._insert: Any = None
        self._by_name: Any = None
        self._by_id: Any = None

    async def _prepare(self, session: Session, ks: str) -> None:
        prepare = session.prepare
        self._claim = await asyncio.to_thread(
            prepare,
            f"INSERT INTO {ks}.users_by_name (username_key, user_id, username, password_hash, "
            "created_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS",
        )
        self._claim.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
        self._release = await asyncio.to_thread(
            prepare, f"DELETE FROM {ks}.users_by_name WHERE username_key = ? IF user_id = ?"
        )
        self._release.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
        self._insert = await asyncio.to_thread(
            prepare,
            f"INSERT INTO {ks}.users (user_id, username, password_hash, created_at) "
            "VALUES (?, ?, ?, ?)",
        )
        self._by_name = await asyncio.to_thread(
            prepare, f"SELECT {_COLUMNS} FROM {ks}.users_by_name WHERE username_key = ?"
        )
        self._by_id = await asyncio.to_thread(
            prepare, f"SELECT {_COLUMNS} FROM {ks}.users WHERE user_id = ?"
        )

    async def create(self, user: User) -> None:
        created = dt.datetime.fromtimestamp(user.created_ms / 1000, tz=dt.UTC)
        rows = await self._q(
            self._claim,
            (user.username_key, user.user_id, user.username, user.password_hash, created),
        )
        if not rows or not rows[0][0]:  # first column of an LWT result is [applied]
            raise UsernameTaken(user.username)
        try:
            await self._q(self._insert, (user.user_id, user.username, user.password_hash, created))
        except Unavailable:
            try:
                await self._q(self._release, (user.username_key, user.user_id))
            except Unavailable as exc:
                log.warning("could not release username claim of user %s: %s", user.user_id, exc)
            raise

    async def by_username(self, username: str) -> User | None:
        return _user(await self._q(self._by_name, (username_key(username),)))

    async def by_id(self, user_id: str) -> User | None:
        return _user(await self._q(self._by_id, (user_id,)))
