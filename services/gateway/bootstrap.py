"""The one place that picks adapters from settings and starts them.

cluster mode: Socket.IO fan-out over Redis pub/sub, presence in Redis, the log in Kafka, the
store in Cassandra. single mode: the in-process Socket.IO manager, in-memory presence, and
SQLite as both log and store (one process, nothing to install, history survives restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Protocol

import socketio

from services.common.redis_io import AnyRedis, redis_client, redis_options
from services.common.retry import Backoff
from services.common.settings import Settings
from services.storage.claims import ClaimStore, MemoryClaims
from services.storage.claims_redis import RedisClaims
from services.storage.control import ControlBus, MemoryControlBus
from services.storage.control_redis import RedisControlBus
from services.storage.events import EventLog, NoEventLog
from services.storage.files import FileStore
from services.storage.memberships import Memberships, MemoryMemberships
from services.storage.messages import MessageLog, MessageStore
from services.storage.presence import PresenceStore
from services.storage.ratelimit import MemoryRateLimiter, RateLimiter
from services.storage.ratelimit_redis import RedisRateLimiter
from services.storage.recent import NoRecentLog, ReadYourWritesStore, RecentLog
from services.storage.revocations import MemoryRevocations, Revocations
from services.storage.revocations_redis import RedisRevocations
from services.storage.stats import MemoryStatsBoard, StatsBoard
from services.storage.stats_redis import RedisStatsBoard
from services.storage.users import MemoryUserStore, UserStore

from .emit import DirectEmitManager

log = logging.getLogger("parley.gateway")


class Startable(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Components:
    manager: socketio.AsyncManager
    log: MessageLog
    store: MessageStore
    presence: PresenceStore
    limiter: RateLimiter
    claims: ClaimStore
    files: FileStore
    recent: RecentLog = field(default_factory=NoRecentLog)  # read-your-writes log
    redis: AnyRedis | None = None  # shared client for small cluster-mode adapters
    control: ControlBus = field(default_factory=MemoryControlBus)  # started by /admin
    stats: StatsBoard = field(default_factory=MemoryStatsBoard)  # admin:stats reports
    users: UserStore = field(default_factory=MemoryUserStore)  # /auth/register, /auth/login
    revocations: Revocations = field(default_factory=MemoryRevocations)  # kicked tokens
    events: EventLog = field(default_factory=NoEventLog)  # transitions for the webhooks
    memberships: Memberships = field(default_factory=MemoryMemberships)  # Server API joins
    _starters: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Start every backend; one that is down keeps retrying in the background."""
        parts: dict[str, Startable] = {
            "log": self.log,
            "store": self.store,
            "presence": self.presence,
            "files": self.files,
            "users": self.users,
            "events": self.events,
        }
        seen: set[int] = set()
        for name, part in parts.items():
            if id(part) in seen:
                continue
            seen.add(id(part))
            self._starters.append(asyncio.create_task(_start_forever(name, part)))
        done, _ = await asyncio.wait(self._starters, timeout=15)
        if len(done) < len(self._starters):
            log.warning("some backends are not up yet; serving with 'unavailable' until they are")

    async def close(self) -> None:
        for task in self._starters:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        seen: set[int] = set()
        for part in (self.events, self.log, self.store, self.presence, self.files, self.users):
            if id(part) not in seen:
                seen.add(id(part))
                with contextlib.suppress(Exception):
                    await part.close()
        close_manager = getattr(self.manager, "close", None)
        if close_manager is not None:  # the fan-out listener
            with contextlib.suppress(Exception):
                await close_manager()
        if self.redis is not None:
            await self.redis.aclose()


async def _start_forever(name: str, part: Startable) -> None:
    backoff = Backoff(0.5, 10.0)
    while True:
        try:
            await part.start()
            log.info("%s adapter %s started", name, type(part).__name__)
            return
        except Exception as exc:  # connection errors of any driver
            delay = backoff.next()
            log.warning(
                "%s adapter %s not up (%s); retrying in %.1fs",
                name,
                type(part).__name__,
                exc,
                delay,
            )
            with contextlib.suppress(Exception):
                await part.close()
            await asyncio.sleep(delay)


def build(settings: Settings) -> Components:
    if settings.single_node:
        from services.storage.files_sqlite import SqliteFileStore
        from services.storage.messages_sqlite import SqliteMessageStore
        from services.storage.presence import MemoryPresenceStore
        from services.storage.users_sqlite import SqliteUserStore

        log.info(
            "single-node mode: in-process fan-out, memory presence, SQLite at %s",
            settings.sqlite_path,
        )
        sqlite = SqliteMessageStore(settings.sqlite_path)
        return Components(
            manager=DirectEmitManager(),
            log=sqlite,
            store=sqlite,
            presence=MemoryPresenceStore(
                int(settings.presence_grace_seconds * 1000), settings.presence_scope
            ),
            limiter=MemoryRateLimiter(),
            claims=MemoryClaims(),
            files=SqliteFileStore(settings.sqlite_path),
            users=SqliteUserStore(settings.sqlite_path),
        )

    from services.storage.events_kafka import KafkaEventLog
    from services.storage.files_cassandra import CassandraFileStore
    from services.storage.memberships_redis import RedisMemberships
    from services.storage.messages_cassandra import CassandraMessageStore
    from services.storage.messages_kafka import KafkaMessageLog
    from services.storage.presence_events import RecordingPresence
    from services.storage.presence_redis import RedisPresenceStore
    from services.storage.recent_redis import RedisRecentLog
    from services.storage.users_cassandra import CassandraUserStore

    from .fanout import FanoutManager

    log.info(
        "cluster mode: redis %s, kafka %s (topic %s), cassandra %s:%d/%s",
        settings.redis_url,
        settings.kafka_bootstrap,
        settings.kafka_topic,
        settings.cassandra_hosts,
        settings.cassandra_port,
        settings.cassandra_keyspace,
    )
    trust = redis_options(settings)
    manager = FanoutManager(
        settings.redis_url, channel=settings.socketio_channel, redis_options=trust
    )
    redis = redis_client(settings.redis_url, options=trust)
    recent = RedisRecentLog(redis, settings.redis_prefix)
    events = KafkaEventLog(settings)
    return Components(
        manager=manager,
        log=KafkaMessageLog(settings),
        store=ReadYourWritesStore(CassandraMessageStore(settings), recent),
        recent=recent,
        presence=RecordingPresence(RedisPresenceStore.from_settings(settings), events),
        limiter=RedisRateLimiter(redis, settings.redis_prefix),
        claims=RedisClaims(redis, settings.redis_prefix),
        files=CassandraFileStore(settings),
        users=CassandraUserStore(settings),
        redis=redis,
        control=RedisControlBus(settings.redis_url, settings.redis_prefix, redis_options=trust),
        stats=RedisStatsBoard(redis, settings.redis_prefix),
        revocations=RedisRevocations(redis, settings.redis_prefix, settings.jwt_leeway_seconds),
        events=events,
        memberships=RedisMemberships(redis, settings.redis_prefix),
    )
