"""Shared plumbing of the benchmarks: processes we start and stop, their RSS and CPU time,
readiness waits, percentiles, and where results go.

Every process a benchmark starts is a ``Proc``: started in its own session with its output in
``bench-results/<run>/logs/``, stopped (SIGTERM, then SIGKILL) by the pid we got at start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt

ROOT = Path(__file__).resolve().parents[1]
SECRET = "parley-bench-secret-not-for-production-0123456789"  # both servers, ≥ 32 bytes
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(user: str = "bench", ttl: int = 3 * 3600) -> str:
    """One HS256 token both servers accept (Parley: ``sub`` + ``exp``; reference: ``userId``)."""
    now = int(time.time())
    claims = {"sub": user, "userId": user, "username": user, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the definition fanout.js uses)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float | None:
    ok = sorted(v for v in values if v is not None)
    if not ok:
        return None
    mid = len(ok) // 2
    return ok[mid] if len(ok) % 2 else (ok[mid - 1] + ok[mid]) / 2


class Proc:
    """A server process started by the benchmark (Parley service, reference server, worker)."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log_dir: Path
    ) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_kb(self) -> int:
        """VmRSS of the process, from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"{self.name}: no VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_http(self, url: str, timeout: float = 60) -> None:
        """Until ``url`` answers 200 (Parley's /readyz)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited; log {self.log_path}:\n{self.tail()}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready in {timeout}s; log {self.log_path}")

    def wait_port(self, port: int, timeout: float = 30) -> None:
        """Until something accepts connections on 127.0.0.1:port (the reference server)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited; log {self.log_path}:\n{self.tail()}")
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not listening on {port} in {timeout}s")

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


def parley(name: str, module: str, env: dict[str, str], log_dir: Path) -> tuple[Proc, str]:
    """Start ``python -m services.<module>`` on a free port; returns it and its base URL."""
    port = free_port()
    proc = Proc(
        name,
        [sys.executable, "-m", f"services.{module}"],
        {
            "PARLEY_PORT": str(port),
            "PARLEY_POD_ID": name,
            "PARLEY_LOG_LEVEL": "warning",
            "PARLEY_JWT_SECRET": SECRET,
            **env,
        },
        ROOT,
        log_dir,
    )
    return proc, f"http://127.0.0.1:{port}"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
