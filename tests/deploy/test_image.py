"""The image recipe (no container engine here: it is checked, not built) and the helm test
script, which runs for real against a single-node gateway."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.conftest import CHART, REPO, docs, run, template

DOCKERFILE = (REPO / "Dockerfile").read_text()


def test_dockerfile_is_multi_stage_non_root_exec_form():
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", DOCKERFILE, re.M)
    assert stages == ["wheels", "venv", "adminui", "runtime"]
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    assert "build-essential" not in runtime and "pip install" not in runtime
    user = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)
    assert user == ["${PARLEY_UID}:${PARLEY_UID}"]
    assert re.search(r"^ARG PARLEY_UID=10001$", DOCKERFILE, re.M)
    cmd = re.findall(r"^CMD\s+(.*)$", DOCKERFILE, re.M)
    assert cmd == ['["python", "-m", "services.gateway"]'], "exec form: PID 1 gets SIGTERM"
    assert "ADD " not in DOCKERFILE


def test_chart_uid_matches_the_image(helm):
    values = (CHART / "values.yaml").read_text()
    assert "runAsUser: 10001" in values and "runAsGroup: 10001" in values


def test_dockerignore_sends_only_what_the_image_copies():
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: nothing is sent unless named"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for src in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$", DOCKERFILE, re.M):
        copied.update(s.rstrip("/") for s in src.split())
    assert copied <= allowed, f"COPY of files the context does not send: {copied - allowed}"
    for name in allowed:
        assert (REPO / name).exists(), f"{name} named in .dockerignore does not exist"


def test_checkov_dockerfile(venvs):
    proc = run(
        [str(venvs["checkov"] / "checkov"), "-f", str(REPO / "Dockerfile")]
        + ["--framework", "dockerfile", "--quiet", "--compact", "--skip-download"]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_command_the_chart_runs_exists(helm):
    objs = docs(template(helm, "--set", "auth.jwtSecret=" + "k" * 40))
    modules = set()
    for o in objs:
        spec = o.get("spec", {})
        pod = spec.get("template", {}).get("spec") or (spec if o["kind"] == "Pod" else None)
        for c in (pod or {}).get("containers", []):
            cmd = c["command"]
            if cmd[:2] == ["python", "-m"]:
                modules.add(cmd[2])
    assert modules == {
        "services.gateway",
        "services.persistence",
        "services.presence",
        "services.persistence.migrate",
    }
    for m in modules:
        name = m if m.endswith("migrate") else m + ".__main__"
        assert importlib.util.find_spec(name), m


def _free_port() -> int:
    base = int(os.environ.get("PARLEY_DEPLOY_SMOKE_PORT", "0"))
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", base))
        return s.getsockname()[1]


@pytest.fixture
def single_gateway(tmp_path):
    port = _free_port()
    secret = "smoke-test-secret-" + os.urandom(16).hex()
    env = {
        **os.environ,
        "PARLEY_MODE": "single",
        "PARLEY_PORT": str(port),
        "PARLEY_SQLITE_PATH": str(tmp_path / "parley.db"),
        "PARLEY_JWT_SECRET": secret,
        "PARLEY_DRAIN_SECONDS": "0",  # stop at once: nothing to drain in this test
        "PARLEY_DRAIN_DISCONNECT_SECONDS": "0",
    }
    log = open(tmp_path / "gateway.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.gateway"], cwd=REPO, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "gateway.log").read_text()) from None
                time.sleep(0.2)
        yield url, secret
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_helm_test_script_against_a_real_gateway(single_gateway):
    url, secret = single_gateway
    script = CHART / "files" / "smoke.py"
    env = {**os.environ, "PARLEY_JWT_SECRET": secret, "PARLEY_JWT_ALGORITHM": "HS256"}
    proc = run([sys.executable, str(script), url], env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "chat:message acked with messageId" in proc.stdout
    # ... and it fails when the gateway refuses the token
    env["PARLEY_JWT_SECRET"] = "another-secret-" + "x" * 32
    proc = run([sys.executable, str(script), url], env=env)
    assert proc.returncode == 1 and "invalid_token" in proc.stderr


def test_smoke_script_is_what_the_test_pod_mounts(helm):
    objs = docs(template(helm, "--set", "auth.jwtSecret=" + "k" * 40))
    cm = next(
        o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-smoke")
    )
    assert cm["data"]["smoke.py"] == (CHART / "files" / "smoke.py").read_text().rstrip("\n")
    assert Path(CHART / "files" / "smoke.py").stat().st_size < 16_000
