"""End-to-end: the official JavaScript ``socket.io-client`` (node_modules, ``make deps``) runs the
classic chat flow (``tests/js/chat_flow.mjs``) against the running services, over each
transport mode: long-polling only, WebSocket only, and polling upgraded to WebSocket.

Targets: the single-node gateway; the cluster with the two users on different gateways; and
the cluster behind a private nginx with ``ip_hash`` sticky sessions (deploy/local/nginx.sh on a
free port, its files under a pytest tmp dir), where polling-only needs the stickiness.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid

import httpx
import pytest

from tests.support.procs import ROOT, free_port

pytestmark = pytest.mark.e2e

SCRIPT = ROOT / "tests" / "js" / "chat_flow.mjs"
NGINX_SH = ROOT / "deploy" / "local" / "nginx.sh"
MODES = ["polling", "websocket", "upgrade"]
RUN_TIMEOUT = 170  # the script's own watchdog is 150 s


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def node_or_fail() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (needed for the socket.io-client compatibility test)")
    if not (ROOT / "node_modules" / "socket.io-client" / "package.json").exists():
        pytest.fail("node_modules/socket.io-client is missing: run `make deps` (npm ci)")
    return node


async def run_flow(system, mode: str, url_a: str, url_b: str) -> dict:
    """Runs the script for two fresh users and a fresh room; fails showing its output."""
    node = node_or_fail()
    tag = unique("js")
    args = [
        node,
        str(SCRIPT),
        url_a,
        system.token(f"{tag}-alice", username="Alice ✓"),
        system.token(f"{tag}-bob", username="Bob"),
        mode,
        "--url-b",
        url_b,
        "--room",
        f"room-{tag}",
        "--resync-seconds",
        "20",
    ]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        pytest.fail(f"chat_flow.mjs did not finish in {RUN_TIMEOUT}s\n{report(out, err)}")
    try:
        summary = json.loads(out.decode().strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        summary = None
    if proc.returncode != 0 or not summary or not summary.get("ok"):
        pytest.fail(
            f"chat_flow.mjs {mode} {url_a} {url_b} exited {proc.returncode}\n{report(out, err)}"
        )
    return summary


def report(out: bytes, err: bytes) -> str:
    """The script's stderr, then each step of its JSON summary on one line."""
    lines = [err.decode(errors="replace").strip()]
    text = out.decode(errors="replace").strip()
    try:
        summary = json.loads(text.splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return "\n".join([*lines, "stdout:", text])
    for s in summary.get("steps", []):
        verdict = "ok  " if s["ok"] else ("SKIP" if "skipped" in s else "FAIL")
        why = s.get("error") or s.get("skipped") or ""
        lines.append(f"  {verdict} {s['name']} ({s['ms']} ms) {why}".rstrip())
    lines.append("summary: " + json.dumps({k: v for k, v in summary.items() if k != "steps"}))
    return "\n".join(lines)


@pytest.mark.parametrize("mode", MODES)
async def test_js_client_on_gateways(system, mode):
    """Single node: both users on the one gateway; cluster: user A on gateway A, B on B."""
    urls = [g.url for g in system.gateways]
    summary = await run_flow(system, mode, urls[0], urls[-1])
    if mode == "upgrade":
        assert {t["current"] for t in summary["transports"].values()} == {"websocket"}


@pytest.fixture(scope="module")
def nginx_front(cluster, tmp_path_factory):
    """A private nginx (ip_hash) in front of the cluster's two gateways, on a free port."""
    run_dir = tmp_path_factory.mktemp("nginx-run")
    port = free_port()
    env = {
        **os.environ,
        "PARLEY_RUN_DIR": str(run_dir),  # never the developer's own .run/ or devenv run dir
        "PARLEY_NGINX_PORT": str(port),
        "PARLEY_GATEWAY_PORTS": " ".join(str(g.port) for g in cluster.gateways),
    }

    def nginx(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(NGINX_SH), command],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    up = nginx("up")
    if up.returncode != 0:
        pytest.fail(f"nginx.sh up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    try:
        url = f"http://127.0.0.1:{port}"
        ready = httpx.get(url + "/readyz", timeout=5)  # proxied to a gateway
        assert ready.status_code == 200, ready.text
        yield url
    finally:
        down = nginx("down")
        assert down.returncode == 0, f"nginx.sh down failed:\n{down.stdout}\n{down.stderr}"


@pytest.mark.parametrize("mode", MODES)
async def test_js_client_through_nginx(cluster, nginx_front, mode):
    """Both users through nginx; polling-only works only because sessions are sticky."""
    summary = await run_flow(cluster, mode, nginx_front, nginx_front)
    if mode == "upgrade":
        assert {t["current"] for t in summary["transports"].values()} == {"websocket"}
