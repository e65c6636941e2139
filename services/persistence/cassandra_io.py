"""Connecting to Cassandra and awaiting cassandra-driver futures from asyncio."""

from __future__ import annotations

import asyncio
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    ResponseFuture,
    Session,
)
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import Statement

from services.common.settings import Settings

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
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=settings.cassandra_timeout_seconds,
        control_connection_timeout=settings.cassandra_timeout_seconds,
    )


async def connect(settings: Settings, keyspace: str | None = None) -> tuple[Cluster, Session]:
    """Open a session (blocking driver call, run on a thread)."""
    cluster = make_cluster(settings)
    try:
        session = await asyncio.to_thread(cluster.connect, keyspace)
    except BaseException:
        cluster.shutdown()
        raise
    return cluster, session


def execute(session: Session, query: str | Statement, params: Any = None) -> asyncio.Future:
    """Run a statement; the returned future resolves to the rows of the first page."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future = loop.create_future()
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
