"""Redis clients for every service: a bounded, *blocking* connection pool, and the one place
that turns the settings into connection options (ACL user, password, TLS).

redis-py's default pool fails at once with "Too many connections" when all its connections
are busy, so a burst (hundreds of sockets closing together) would turn into lost presence
updates. A blocking pool makes callers wait for a free connection instead (up to
``POOL_TIMEOUT_S``), which is what a burst needs; only a Redis that stays unreachable fails.

Every Redis client of the services is made by ``redis_client`` with the options of
``redis_options(settings)``; credentials never go into the URL (which is logged).

With ``PARLEY_REDIS_CLUSTER=true`` (``redis_options`` then carries ``cluster: True``) the same
call makes a ``redis.asyncio.cluster.RedisCluster`` from the seed node in the URL, with the
same ACL and TLS options: it discovers the other nodes, routes every command by its key's hash
slot and follows MOVED/ASK. redis-py's cluster client has no blocking pool; each node gets
``CLUSTER_MAX_CONNECTIONS`` connections and a burst beyond that fails fast (and is retried by
the callers that retry). Keys that a Lua script or a MULTI touches together share a hash tag
(see each adapter), so every script and transaction runs on one node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection

from .settings import Settings

MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 5.0
CLUSTER_MAX_CONNECTIONS = 512  # per node; redis-py's cluster pool does not block

# What ``redis_client`` returns: one Redis, or a Redis Cluster (PARLEY_REDIS_CLUSTER).
AnyRedis = aioredis.Redis | RedisCluster


def redis_options(settings: Settings) -> dict[str, Any]:
    """Connection options from ``PARLEY_REDIS_USERNAME/PASSWORD/TLS/TLS_CA_FILE``.

    TLS verifies the server's certificate and host name (against the CA file, or the system
    CAs). Credentials in the URL itself (``redis://user:pw@host``) still win over these.
    ``cluster`` (``PARLEY_REDIS_CLUSTER``) makes ``redis_client`` build a cluster client."""
    options: dict[str, Any] = {}
    if settings.redis_cluster:
        options["cluster"] = True
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


def is_cluster(options: Mapping[str, Any] | None) -> bool:
    return bool(options and options.get("cluster"))


def redis_client(
    url: str,
    decode: bool = True,
    socket_timeout: float | None = 5.0,
    options: Mapping[str, Any] | None = None,
) -> AnyRedis:
    """``socket_timeout=None`` for pub/sub listeners, which wait on the socket by design;
    ``options``: ``redis_options(settings)`` (with ``cluster`` set: a ``RedisCluster``)."""
    opts = dict(options or {})
    if opts.pop("cluster", False):
        return cluster_client(url, decode, socket_timeout, opts)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, **_pool_options(decode, socket_timeout), **opts
    )
    return aioredis.Redis(connection_pool=pool)


def _pool_options(decode: bool, socket_timeout: float | None) -> dict[str, Any]:
    """The blocking pool every plain client gets (see the module doc)."""
    return {
        "max_connections": MAX_CONNECTIONS,
        "timeout": POOL_TIMEOUT_S,
        "decode_responses": decode,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5,
        "health_check_interval": 10,
    }


def node_client(
    host: str,
    port: int,
    decode: bool = True,
    socket_timeout: float | None = 5.0,
    options: Mapping[str, Any] | None = None,
) -> aioredis.Redis:
    """A plain client to one node of a cluster (sharded pub/sub holds one connection per
    node), with the same ACL/TLS options."""
    opts = {k: v for k, v in (options or {}).items() if k != "cluster"}
    pool = aioredis.BlockingConnectionPool(
        host=host, port=port, **_pool_options(decode, socket_timeout), **opts
    )
    return aioredis.Redis(connection_pool=pool)


class ReadyCluster(RedisCluster):
    """A ``RedisCluster`` that loads the slot map before the first command it runs.

    redis-py 8.1 resolves a command's node *before* it initializes, against the seed node;
    first commands issued concurrently on a fresh client (a gateway's first burst) then
    sometimes die with ``AttributeError: 'NoneType' object has no attribute 'writelines'``
    while the seed connection is replaced (seen here: 2-6 of 400 concurrent first commands;
    0 once initialized). ``initialize`` is locked, so the waiters queue behind one load."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            await self.initialize()
        return await super().execute_command(*args, **kwargs)


def cluster_client(
    url: str,
    decode: bool = True,
    socket_timeout: float | None = 5.0,
    options: Mapping[str, Any] | None = None,
) -> RedisCluster:
    """A ``RedisCluster`` from one seed node's URL; TLS as ``ssl=True`` (the cluster client
    builds its own connections per node)."""
    opts = dict(options or {})
    if opts.pop("connection_class", None) is SSLConnection or url.lower().startswith("rediss:"):
        opts["ssl"] = True
    return ReadyCluster.from_url(
        url,
        max_connections=CLUSTER_MAX_CONNECTIONS,
        decode_responses=decode,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5,
        health_check_interval=10,
        **opts,
    )


async def publish(client: AnyRedis, channel: str, payload: str | bytes) -> int:
    """Classic PUBLISH; returns how many subscribers got it. On a cluster a PUBLISH reaches
    every node, but counts only the subscribers of the node it was sent to, so it goes to the
    node owning the channel's slot — the node Parley's subscribers of that channel use
    (``ClusterPubSub`` and ``fanout_cluster`` pick it the same way)."""
    if isinstance(client, RedisCluster):
        await client.initialize()
        node = client.get_node_from_key(channel)
        return int(await client.execute_command("PUBLISH", channel, payload, target_nodes=node))
    return int(await client.publish(channel, payload))
