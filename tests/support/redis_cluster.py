"""A local 3-master Redis Cluster for the tests, started once per session and stopped at the end.

Three ``redis-server --cluster-enabled yes`` on 127.0.0.1 (ports
``PARLEY_TEST_REDIS_CLUSTER_PORTS``, default 17101-17103), each in its own temporary
directory, joined by ``redis-cli --cluster create ... --cluster-yes`` (no replicas), then
polled until ``CLUSTER INFO`` says ``cluster_state:ok`` on every node. The binaries are the
ones ``deploy/local/infra.sh`` uses: ``redis-server`` / ``redis-cli`` from ``PATH`` (Debian's
package). If one of the ports is taken the fixture fails naming it rather than joining a
stranger's cluster.

``redis_cluster`` yields the seed URL (the first node); services are pointed at it with
``PARLEY_REDIS_URL=<seed>`` and ``PARLEY_REDIS_CLUSTER=true``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
