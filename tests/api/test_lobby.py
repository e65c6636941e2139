"""The lobby example end to end on the cluster: players on both API gateways, the example
run as its own process against gateway A."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.procs import ROOT

from .conftest import KEYS, room, user

pytestmark = pytest.mark.e2e


async def test_the_lobby_moves_a_full_lobby_into_a_game_across_pods(api_cluster):
    lobby, size = room(), 4
    players = {user(): gateway for gateway in (0, 1, 0, 1)}
    sockets = {}
    for player, gateway in players.items():
        sockets[player] = await api_cluster.client(player, gateway=gateway)
        assert (await sockets[player].call("room:join", lobby))["status"] == "ok"
    proc = subprocess.Popen(
        [
            sys.executable,
            "examples/lobby/lobby.py",
            "--url", api_cluster.gateways[0].url,
            f"--key={KEYS['everything']}",  # a key may start with "-"
            "--lobby", lobby,
            "--size", str(size),
            "--games", "1",
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        matches = [await s.wait_for("app:match", timeout=30) for s in sockets.values()]
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    game = matches[0]["game"]
    assert all(m == matches[0] for m in matches)
    assert sorted(matches[0]["players"]) == sorted(players)
    for s in sockets.values():  # joined server-side: the game's history, then its messages
        await s.wait_for("room:history", lambda h: h["roomId"] == game)
        await s.wait_for("chat:message", lambda m: m["roomId"] == game)
    first, *others = list(sockets.values())
    ack = await first.call("chat:message", {"roomId": game, "text": "gl hf"})
    assert ack["status"] == "ok"
    for s in others:  # on A and on B
        await s.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])
    assert await api_cluster.api("reader").members(lobby) == []
