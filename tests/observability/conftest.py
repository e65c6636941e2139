"""A real Prometheus (deploy/prometheus/prometheus.sh) scraping the ``make_up_stack`` cluster
every second, with Parley's rules loaded; stopped at the end of the session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import httpx
import pytest

from tests.support.procs import ROOT, free_port


class Prometheus:
    def __init__(self, url: str, targets_dir: str) -> None:
        self.url = url
        self.targets_dir = targets_dir

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        r = httpx.get(self.url + "/api/v1/query", params=params, timeout=10)
        body = r.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def values(self, expr: str, at: float | None = None) -> list[float]:
        return [float(s["value"][1]) for s in self.query(expr, at)]

    def add_target(self, name: str, job: str, pod: str, port: int) -> None:
        """Scrape one more process (a file_sd file beside the cluster's)."""
        group = [
            {
                "targets": [f"127.0.0.1:{port}"],
                "labels": {"job": job, "namespace": "local", "pod": pod},
            }
        ]
        path = os.path.join(self.targets_dir, f"{name}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(group, f)
        os.replace(path + ".tmp", path)

    def remove_target(self, name: str) -> None:
        path = os.path.join(self.targets_dir, f"{name}.json")
        if os.path.exists(path):
            os.remove(path)

    def wait_for(self, expr: str, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.5)


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool (and prometheus), installed from Debian by prometheus.sh if missing."""
    if shutil.which("promtool") is None:
        result = subprocess.run(
            ["bash", str(ROOT / "deploy/prometheus/prometheus.sh"), "install"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"installing prometheus:\n{result.stdout}\n{result.stderr}"
    path = shutil.which("promtool")
    assert path, "promtool is still missing"
    return path


@pytest.fixture(scope="session")
def prometheus(make_up_stack, promtool):
    port = int(os.environ.get("PARLEY_TEST_PROMETHEUS_PORT") or free_port())
    env = {
        **os.environ,
        **make_up_stack.env,
        "PARLEY_PROMETHEUS_PORT": str(port),
        "PARLEY_PROMETHEUS_SCRAPE_INTERVAL": "1s",
    }
    script = str(ROOT / "deploy/prometheus/prometheus.sh")

    def sh(cmd: str) -> None:
        result = subprocess.run(
            ["bash", script, cmd], env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"prometheus.sh {cmd}:\n{result.stdout}\n{result.stderr}"

    sh("up")
    try:
        prom = Prometheus(
            f"http://127.0.0.1:{port}",
            make_up_stack.env["PARLEY_CLUSTER_DIR"] + "/prometheus/targets",
        )
        up = prom.wait_for('count(up{job=~"parley-.*"} == 1) == 4')
        assert up, f"Prometheus does not see the 4 processes up: {prom.query('up')}"
        yield prom
    finally:
        sh("down")
