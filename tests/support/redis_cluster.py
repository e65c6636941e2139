"""A local 3-master Redis Cluster for the tests, started once per session and stopped at the end.

Three ``redis-server --cluster-enabled yes`` on 127.0.0.1 (ports
``PARLEY_TEST_REDIS_CLUSTER_PORTS``, default 17101-17103), each in its own temporary
directory, joined by ``redis-cli --cluster create ... --cluster-yes`` (no replicas), then
polled until ``CLUSTER INFO`` says ``cluster_state:ok`` on every node. The binaries are the
ones ``deploy/local/infra.sh`` uses: ``redis-server`` / ``redis-cli`` from ``PATH`` (Debian's
package). If one of the ports is taken the fixture fails naming it rather than joining a
stranger's cluster.

``redis_cluster`` yields the seed URL (the first node); services are pointed at it with
``PARLEY_REDIS_URL=<seed>`` and ``PARLEY_REDIS_CLUSTER=true`` (``rc_engine_env``), and
``rc_cluster`` is the e2e ``System`` (two gateways, worker, presence service) on it. The
helpers below let one test body speak to either kind of Redis: on a cluster, room channels
are shard channels (``SPUBLISH`` / ``SSUBSCRIBE`` / ``PUBSUB SHARDNUMSUB``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from services.common.redis_io import redis_client
from services.common.settings import Settings
from tests.support.system import run_system

READY_TIMEOUT_S = 30.0


def cluster_ports() -> list[int]:
    raw = os.environ.get("PARLEY_TEST_REDIS_CLUSTER_PORTS", "17101,17102,17103")
    return [int(p) for p in raw.split(",") if p.strip()]


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    done = subprocess.run(
        [shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout + done.stderr


class RedisClusterNodes:
    """The processes and their directory; ``start`` and ``stop`` are idempotent."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.dir = Path(tempfile.mkdtemp(prefix="parley-rcluster-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def seed_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> RedisClusterNodes:
        server = shutil.which("redis-server")
        if server is None or shutil.which("redis-cli") is None:
            pytest.fail("redis-server / redis-cli not on PATH (apt-get install redis-server)")
        taken = [p for p in self.ports if not _free(p)]
        if taken:
            pytest.fail(f"Redis Cluster test ports already in use: {taken}")
        for port in self.ports:
            node_dir = self.dir / str(port)
            node_dir.mkdir()
            log = open(node_dir / "redis.log", "wb")  # noqa: SIM115 - the process keeps it
            self.procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(node_dir / "nodes.conf"),
                        "--cluster-node-timeout",
                        "2000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node_dir),
                        "--daemonize",
                        "no",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        for port in self.ports:
            while "PONG" not in _cli(port, "ping"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis cluster node :{port} did not answer PING")
                time.sleep(0.05)
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        created = _cli(self.ports[0], "--cluster", "create", *nodes, "--cluster-yes", timeout=60)
        if "[OK]" not in created:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created}")
        while not all("cluster_state:ok" in _cli(p, "cluster", "info") for p in self.ports):
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[str]:
    """The seed URL of a fresh 3-master Redis Cluster (stopped and removed at the end)."""
    nodes = RedisClusterNodes(cluster_ports()).start()
    try:
        yield nodes.seed_url
    finally:
        nodes.stop()


@pytest.fixture(scope="session", params=["redis", "redis-cluster"])
def redis_target(request, engine_settings) -> tuple[str, dict[str, Any]]:
    """``(url, redis_options)`` of the shared single Redis, then of the Redis Cluster: the
    Redis adapter contracts run on both."""
    if request.param == "redis-cluster":
        return request.getfixturevalue("redis_cluster"), {"cluster": True}
    return engine_settings.redis_url, {}


@pytest.fixture
async def redis_either(redis_target) -> AsyncIterator[Any]:
    """A client made by ``redis_io.redis_client`` (a ``RedisCluster`` on the cluster)."""
    url, options = redis_target
    client = redis_client(url, options=options)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def rc_engine_env(engine_env, redis_cluster) -> dict[str, str]:
    """The run's engine env with Redis swapped for the cluster (own prefix and group; the
    same Kafka topic and Cassandra keyspace)."""
    return {
        **engine_env,
        "PARLEY_REDIS_URL": redis_cluster,
        "PARLEY_REDIS_CLUSTER": "true",
        "PARLEY_REDIS_PREFIX": engine_env["PARLEY_REDIS_PREFIX"] + "rc:",
        "PARLEY_KAFKA_GROUP": engine_env["PARLEY_KAFKA_GROUP"] + "-rc",
    }


@pytest.fixture(scope="session")
def rc_cluster(migrated, rc_engine_env):
    """The two-gateway system with its Redis on the local Redis Cluster."""
    settings = Settings.from_env({**os.environ, **rc_engine_env})
    yield from run_system(settings, rc_engine_env, "rc")


async def any_redis(settings: Settings, decode: bool = False) -> aioredis.Redis | RedisCluster:
    """A client of the system's Redis (a cluster client, initialized, on a cluster)."""
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(settings.redis_url, decode_responses=decode)
        await cluster.initialize()
        return cluster
    return aioredis.Redis.from_url(settings.redis_url, decode_responses=decode)


async def channel_subscribers(settings: Settings, channel: str) -> int:
    """How many pods listen on a room channel (shard subscribers on a cluster)."""
    redis = await any_redis(settings)
    try:
        if isinstance(redis, RedisCluster):
            node = redis.get_node_from_key(channel)
            found = await redis.pubsub_shardnumsub(channel, target_nodes=node)
            return int(dict(found)[channel.encode()])
        return int(dict(await redis.pubsub_numsub(channel))[channel.encode()])
    finally:
        await redis.aclose()


async def publish_room(settings: Settings, channel: str, payload: bytes | str) -> int:
    """Publish on a room channel as a gateway would (``SPUBLISH`` on a cluster)."""
    redis = await any_redis(settings)
    try:
        if isinstance(redis, RedisCluster):
            return int(await redis.spublish(channel, payload))
        return int(await redis.publish(channel, payload))
    finally:
        await redis.aclose()


@asynccontextmanager
async def room_listener(settings: Settings, channel: str) -> AsyncIterator[Any]:
    """An async ``next_data(timeout)`` of what is published on a room channel."""
    redis = await any_redis(settings)
    pubsub: Any = redis.pubsub(ignore_subscribe_messages=True)
    try:
        if isinstance(redis, RedisCluster):
            await pubsub.ssubscribe(channel)
            await pubsub.get_sharded_message(timeout=1)

            async def next_data(timeout: float) -> bytes | None:
                message = await pubsub.get_sharded_message(timeout=timeout)
                return None if message is None else message["data"]
        else:
            await pubsub.subscribe(channel)
            await pubsub.get_message(timeout=1)

            async def next_data(timeout: float) -> bytes | None:
                message = await pubsub.get_message(timeout=timeout)
                return None if message is None else message["data"]

        yield next_data
    finally:
        await pubsub.aclose()
        await redis.aclose()
