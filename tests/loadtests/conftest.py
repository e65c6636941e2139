"""Load-test layer wiring: the locust venv, a token list for the ``make_up_stack`` stack, and
one helper that runs ``loadtests/run.py`` and reads what it wrote.

Runs are small (a few users, ~12 s) and go through nginx unless a test says otherwise.
Per-user rates stay under the stack's default limits; registration (rate limited per client
IP) is used by one scenario with three users only, every other run uses minted tokens.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import ROOT, Service, free_port

LOADTESTS = ROOT / "loadtests"
sys.path.insert(0, str(LOADTESTS))  # the pure modules (config, delivery books, verdict)

# No latency bound can fail these runs on a shared 2-core machine; the bounds are unit-tested.
QUIET_THRESHOLDS = "deliver:chat:message:p99=600000"


@dataclass
class Run:
    code: int
    out: Path
    output: str

    @property
    def meta(self) -> dict:
        return json.loads((self.out / "locust_parley.json").read_text())

    @property
    def counts(self) -> dict[str, int]:
        return self.meta["counts"]

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        with (self.out / "locust_stats.csv").open(newline="") as f:
            return {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}

    def requests(self, kind: str, name: str) -> int:
        row = self.stats().get((kind, name))
        return int(row["Request Count"]) if row else 0

    def failures(self) -> list[dict[str, str]]:
        with (self.out / "locust_failures.csv").open(newline="") as f:
            return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def locust_python() -> str:
    done = subprocess.run(
        ["bash", str(LOADTESTS / "venv.sh")], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="session")
def kafkaless_gateway(make_up_stack):
    """A gateway on the stack's engines and secret whose Kafka is a closed port, with its own
    Redis prefix so the stack's presence and admin stats never see it. Started here, at the
    first load test, because it waits 10 s for Kafka before it serves (the negative test runs
    after others and finds it up)."""
    env = {
        **make_up_stack.env,
        "PARLEY_MODE": "cluster",
        "PARLEY_REDIS_PREFIX": f"ltk{uuid.uuid4().hex[:6]}:",
        "PARLEY_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "PARLEY_KAFKA_SEND_TIMEOUT_SECONDS": "1",
    }
    gateway = Service("gateway", f"lt-kafkaless-{uuid.uuid4().hex[:6]}", env).start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="session")
def lt_tokens(make_up_stack, tmp_path_factory) -> Path:
    """40 tokens for the stack's users (a token list, as for large runs)."""
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    run_id = uuid.uuid4().hex[:6]
    tokens.write_text("".join(make_up_stack.token(f"lt{run_id}u{i}") + "\n" for i in range(40)))
    return tokens


@pytest.fixture(scope="session")
def load(make_up_stack, locust_python, kafkaless_gateway, lt_tokens, tmp_path_factory):
    """Run ``loadtests/run.py`` against the stack: ``load(scenario, users, seconds, ...)``."""
    base = tmp_path_factory.mktemp("loadtests")
    tokens = lt_tokens

    def run(
        scenario: str,
        users: int,
        seconds: int = 12,
        host: str | None = None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> Run:
        out = base / f"{scenario}-{uuid.uuid4().hex[:4]}"
        full_env = {
            **os.environ,
            "PARLEY_LT_TOKENS_FILE": str(tokens),
            "PARLEY_LT_THRESHOLDS": QUIET_THRESHOLDS,
            **(env or {}),
        }
        done = subprocess.run(
            [
                locust_python,
                str(LOADTESTS / "run.py"),
                "--host",
                host or make_up_stack.url,
                "--scenario",
                scenario,
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{seconds}s",
                "--stop-timeout",
                "1",
                "--out",
                str(out),
                *args,
            ],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        return Run(done.returncode, out, done.stdout + done.stderr)

    return run
