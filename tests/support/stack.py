"""The real ``make up`` stack for tests: ``deploy/local/cluster.sh up`` started once per test
session beside any stack a developer runs, then stopped (engines kept).

It is the same script as ``make up`` (two gateways, the persistence worker, the presence
service, nginx in front), on its own ports (``PARLEY_CLUSTER_PORT_BASE``, default 8500:
gateways 8501/8502, worker 8511, presence 8512, nginx 8580), its own pid/log folder
(``.run/test-stack``), and unique Redis prefix, Kafka topic/group and Cassandra keyspace,
so it shares the run's engines with every other test.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from services.common.auth import issue_token
from services.common.settings import Settings
from tests.support.procs import ROOT


@dataclass
class Stack:
    env: dict[str, str]
    base: int
    settings: Settings = field(repr=False)

    @property
    def url(self) -> str:
        """nginx, the clients' entry point."""
        return f"http://127.0.0.1:{self.base + 80}"

    @property
    def gateway_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.base + 1}", f"http://127.0.0.1:{self.base + 2}"]

    @property
    def worker_url(self) -> str:
        return f"http://127.0.0.1:{self.base + 11}"

    @property
    def presence_url(self) -> str:
        return f"http://127.0.0.1:{self.base + 12}"

    @property
    def log_dir(self) -> str:
        return self.env["PARLEY_CLUSTER_DIR"] + "/logs"

    def token(self, user: str, **kw) -> str:
        return issue_token(self.settings, user, **kw)

    def script(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            ["bash", str(ROOT / "deploy/local/cluster.sh"), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"cluster.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout


@pytest.fixture(scope="session")
def make_up_stack():
    run = uuid.uuid4().hex[:8]
    base = int(os.environ.get("PARLEY_TEST_STACK_PORT_BASE", "8500"))
    secret = subprocess.run(
        ["bash", str(ROOT / "deploy/local/secret.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        "PARLEY_CLUSTER_PORT_BASE": str(base),
        "PARLEY_CLUSTER_DIR": str(ROOT / ".run" / "test-stack"),
        "PARLEY_CLUSTER_KEEP_ENGINES": "1",
        "PARLEY_JWT_SECRET": secret,
        "PARLEY_REDIS_PREFIX": f"s{run}:",
        "PARLEY_KAFKA_TOPIC": f"s{run}.messages",
        "PARLEY_KAFKA_GROUP": f"s{run}-persistence",
        "PARLEY_KAFKA_PARTITIONS": "3",
        "PARLEY_CASSANDRA_KEYSPACE": f"s{run}",
    }
    stack = Stack(env, base, Settings.from_env({**os.environ, **env}))
    stack.script("down")  # a stack left over from an interrupted run
    try:
        stack.script("up")
        httpx.get(stack.url + "/readyz", timeout=10).raise_for_status()
        yield stack
    finally:
        stack.script("down")
