"""The web client in a real Chromium against ``make up``'s shape: two gateways behind nginx
(the ``make_up_stack`` fixture runs the real ``deploy/local/cluster.sh``).

The forced reconnect kills the gateway the browsers are on (nginx's ``ip_hash`` sends both
to the same one) and starts it again the way ``cluster.sh`` does, with the stack's env and
pid file; the engines are not touched. While the two browsers are cut off, a third user on
the other gateway writes; after the reconnect both show every message exactly once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.support.procs import ROOT
from tests.support.stack import Stack
from tests.web.browser import ChatPage, unique
from tests.web.scenarios import assert_no_duplicates, two_users_chat

# parley_gateway_connections{nsp="/chat",transport="websocket"} 2.0 (any labels, summed)
CONNECTIONS = re.compile(r"^parley_gateway_connections\{([^}]*)\} (\S+)$", re.M)


def chat_connections(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    return sum(float(v) for labels, v in CONNECTIONS.findall(text) if '="/chat"' in labels)


def gateway_of(stack: Stack, connect) -> int:
    """Index of the gateway that gained a /chat connection while ``connect()`` ran."""
    before = [chat_connections(u) for u in stack.gateway_urls]
    connect()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = [chat_connections(u) for u in stack.gateway_urls]
        gained = [i for i in range(2) if after[i] > before[i]]
        if len(gained) == 1:
            return gained[0]
        time.sleep(0.2)
    raise AssertionError(f"could not tell which gateway took the connection: {before} {after}")


def kill_gateway(stack: Stack, index: int) -> None:
    pid_file = Path(stack.env["PARLEY_CLUSTER_DIR"]) / "pids" / f"gateway-{index + 1}.pid"
    os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    url = stack.gateway_urls[index]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/healthz", timeout=1)
        except httpx.HTTPError:
            return
        time.sleep(0.1)
    raise AssertionError(f"gateway-{index + 1} still answers after SIGKILL")


def start_gateway(stack: Stack, index: int) -> None:
    """As ``cluster.sh``'s start_service: detached, logging to the stack's log, pid file
    written, so ``cluster.sh down`` stops it like the others."""
    name, port = f"gateway-{index + 1}", stack.base + 1 + index
    run_dir = Path(stack.env["PARLEY_CLUSTER_DIR"])
    env = {
        **os.environ,
        **stack.env,
        "PARLEY_MODE": "cluster",
        "PARLEY_PORT": str(port),
        "PARLEY_POD_ID": f"{name}-{uuid.uuid4().hex[:6]}",
    }
    script = (
        f'setsid nohup "{ROOT}/.venv/bin/python" -m services.gateway '
        f'>>"{run_dir}/logs/{name}.log" 2>&1 </dev/null & echo $! >"{run_dir}/pids/{name}.pid"'
    )
    subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{name} not ready after a restart; see {run_dir}/logs/{name}.log")


def test_two_users_chat_through_nginx(make_up_stack, new_user):
    alice, bob, _ = two_users_chat(new_user, make_up_stack.url)
    assert alice.errors() == [] and bob.errors() == []


def test_forced_reconnect_when_their_gateway_restarts(make_up_stack, new_user):
    stack = make_up_stack
    users: dict[str, ChatPage] = {}

    def open_user(key: str, url: str):
        def connect() -> None:
            users[key] = new_user(url).register(unique(key[:2]))
            users[key].connected()

        return connect

    served_by = gateway_of(stack, open_user("alice", stack.url))
    open_user("bob", stack.url)()
    other = 1 - served_by
    carol_gateway = gateway_of(stack, open_user("carol", stack.gateway_urls[other]))
    assert carol_gateway == other
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    room = unique("failover-")
    for user in (alice, bob, carol):
        user.join(room)
    alice.send("before the restart")
    for user in (bob, carol):
        user.expect_texts(["before the restart"])

    kill_gateway(stack, served_by)
    missed = [f"while you were away {i}" for i in range(3)]
    for text in missed:
        carol.send(text)
    carol.expect_texts(["before the restart", *missed])
    start_gateway(stack, served_by)

    expected = ["before the restart", *missed]
    for user in (alice, bob):
        expect(user.page.locator("body")).to_have_attribute("data-reconnects", re.compile("[1-9]"))
        expect(user.page.locator("body")).to_have_attribute("data-connection", "online")
        user.expect_texts(expected)
        banners = user.page.evaluate("window.__parley.banners")
        assert "Connection lost. Reconnecting…" in banners, banners
        assert "Reconnected." in banners, banners
    alice.send("after the restart")
    for user in (alice, bob, carol):
        user.expect_texts([*expected, "after the restart"])
        assert_no_duplicates(user)
    # nginx retried the dead gateway for them: no network error reached the console
    for user in (alice, bob, carol):
        assert user.errors() == [], user.errors()
