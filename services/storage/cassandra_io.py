"""Connecting to Cassandra and awaiting cassandra-driver futures from asyncio."""

from __future__ import annotations

import asyncio
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    ResponseFuture,
    Session,
)
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.query import Statement

from services.common.errors import Unavailable
from services.common.settings import Settings
from services.common.tls import client_context

PROTOCOL_VERSION = 5  # Cassandra 4.0+; pinned so the driver does not probe and downgrade


def make_cluster(settings: Settings) -> Cluster:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        request_timeout=settings.cassandra_timeout_seconds,
    )
    return Cluster(
        contact_points=settings.cassandra_host_list,
        port=settings.cassandra_port,
        protocol_version=PROTOCOL_VERSION,
        # back within seconds of a node returning (the driver's default waits up to 10 min)
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=5.0),
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=settings.cassandra_timeout_seconds,
        control_connection_timeout=settings.cassandra_timeout_seconds,
        **cassandra_trust_options(settings),
    )


def cassandra_trust_options(settings: Settings) -> dict[str, Any]:
    """``Cluster`` options from ``PARLEY_CASSANDRA_USERNAME/PASSWORD/TLS/TLS_CA_FILE``:
    PasswordAuthenticator credentials, and client-to-node TLS that verifies the node's
    certificate and host name (the driver passes the contact point as the server name)."""
    options: dict[str, Any] = {}
    if settings.cassandra_username:
        options["auth_provider"] = PlainTextAuthProvider(
            username=settings.cassandra_username, password=settings.cassandra_password
        )
    if settings.cassandra_tls:
        options["ssl_context"] = client_context(settings.cassandra_tls_ca_file)
    return options


async def connect(settings: Settings, keyspace: str | None = None) -> tuple[Cluster, Session]:
    """Open a session (blocking driver call, run on a thread)."""
    cluster = make_cluster(settings)
    try:
        session = await asyncio.to_thread(cluster.connect, keyspace)
    except BaseException:
        cluster.shutdown()
        raise
    return cluster, session


_SHARED: dict[tuple[Any, ...], list[Any]] = {}  # (hosts, port) -> [cluster, session, users]
_SHARED_LOCK = asyncio.Lock()


async def acquire(settings: Settings) -> tuple[tuple[Any, ...], Session]:
    """A session shared by every adapter of this process that talks to the same cluster (a
    session is thread-safe and pools its own connections); release it with ``release``."""
    key = (tuple(settings.cassandra_host_list), settings.cassandra_port)
    async with _SHARED_LOCK:
        entry = _SHARED.get(key)
        if entry is None:
            cluster, session = await connect(settings)
            entry = _SHARED[key] = [cluster, session, 0]
        entry[2] += 1
        return key, entry[1]


async def release(key: tuple[Any, ...]) -> None:
    async with _SHARED_LOCK:
        entry = _SHARED.get(key)
        if entry is None:
            return
        entry[2] -= 1
        if entry[2] <= 0:
            del _SHARED[key]
            await asyncio.to_thread(entry[0].shutdown)


def execute(session: Session, query: str | Statement, params: Any = None) -> asyncio.Future[Any]:
    """Run a statement; the returned future resolves to the rows of the first page."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[Any] = loop.create_future()
    response: ResponseFuture = session.execute_async(query, params)

    def done(rows: Any) -> None:
        if not result.done():
            result.set_result(rows)

    def failed(exc: BaseException) -> None:
        if not result.done():
            result.set_exception(exc)

    response.add_callbacks(
        lambda rows: loop.call_soon_threadsafe(done, rows),
        lambda exc: loop.call_soon_threadsafe(failed, exc),
    )
    return result


class CassandraAdapter:
    """Base of the Cassandra adapters: a shared cluster connection (``acquire``), prepared
    statements, and one way to run them.

    Subclasses prepare their statements in ``_prepare``; the session is published only after
    every statement exists, so a call before ``start`` finished raises ``Unavailable``
    instead of half-working. Driver errors (no host, timeouts, ...) become ``Unavailable``.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._shared: tuple[Any, ...] | None = None
        self._session: Session | None = None

    async def _prepare(self, session: Session, keyspace: str) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._shared, session = await acquire(self._settings)
        await self._prepare(session, self._settings.cassandra_keyspace)
        self._session = session

    async def close(self) -> None:
        if self._shared is not None:
            shared, self._shared, self._session = self._shared, None, None
            await release(shared)

    async def _q(self, stmt: Any, params: Any = None) -> list[Any]:
        if self._session is None:
            raise Unavailable(f"cassandra: {type(self).__name__} not connected")
        try:
            rows = await execute(self._session, stmt, params)
        except Exception as exc:  # driver errors: NoHostAvailable, timeouts, ...
            raise Unavailable(f"cassandra: {type(exc).__name__}: {exc}") from exc
        return list(rows) if rows is not None else []

    async def healthy(self) -> bool:
        try:
            await self._q("SELECT release_version FROM system.local")
            return True
        except Unavailable:
            return False
