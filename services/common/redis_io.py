"""Redis clients for every service: a bounded, *blocking* connection pool.

redis-py's default pool fails at once with "Too many connections" when all its connections
are busy, so a burst (hundreds of sockets closing together) would turn into lost presence
updates. A blocking pool makes callers wait for a free connection instead (up to
``POOL_TIMEOUT_S``), which is what a burst needs; only a Redis that stays unreachable fails.
"""

from __future__ import annotations

import redis.asyncio as aioredis

MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 5.0


def redis_client(
    url: str, decode: bool = True, socket_timeout: float | None = 5.0
) -> aioredis.Redis:
    """``socket_timeout=None`` for pub/sub listeners, which wait on the socket by design."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_TIMEOUT_S,
        decode_responses=decode,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5,
        health_check_interval=10,
    )
    return aioredis.Redis(connection_pool=pool)
