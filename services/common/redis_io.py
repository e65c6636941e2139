"""Redis clients for every service: a bounded, *blocking* connection pool, and the one place
that turns the settings into connection options (ACL user, password, TLS).

redis-py's default pool fails at once with "Too many connections" when all its connections
are busy, so a burst (hundreds of sockets closing together) would turn into lost presence
updates. A blocking pool makes callers wait for a free connection instead (up to
``POOL_TIMEOUT_S``), which is what a burst needs; only a Redis that stays unreachable fails.

Every Redis client of the services is made by ``redis_client`` with the options of
``redis_options(settings)``; credentials never go into the URL (which is logged).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection

from .settings import Settings

MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 5.0


def redis_options(settings: Settings) -> dict[str, Any]:
    """Connection options from ``PARLEY_REDIS_USERNAME/PASSWORD/TLS/TLS_CA_FILE``.

    TLS verifies the server's certificate and host name (against the CA file, or the system
    CAs). Credentials in the URL itself (``redis://user:pw@host``) still win over these."""
    options: dict[str, Any] = {}
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password:
        options["password"] = settings.redis_password
    if settings.redis_tls_enabled:
        options["connection_class"] = SSLConnection  # a redis:// URL would give a plain one
        options["ssl_cert_reqs"] = "required"
        options["ssl_check_hostname"] = True
        if settings.redis_tls_ca_file:
            options["ssl_ca_certs"] = settings.redis_tls_ca_file
    return options


def redis_client(
    url: str,
    decode: bool = True,
    socket_timeout: float | None = 5.0,
    options: Mapping[str, Any] | None = None,
) -> aioredis.Redis:
    """``socket_timeout=None`` for pub/sub listeners, which wait on the socket by design;
    ``options``: ``redis_options(settings)``."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_TIMEOUT_S,
        decode_responses=decode,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5,
        health_check_interval=10,
        **(options or {}),
    )
    return aioredis.Redis(connection_pool=pool)
