"""N idle WebSocket connections on one gateway, held M seconds: RSS, CPU at idle, drops.

A single-node gateway (``PARLEY_MODE=single``, SQLite in a temporary file) is started on
``--port``; one asyncio client opens N raw Engine.IO v4 websocket connections, each joins the
``/chat`` namespace with a token and then only answers the server's pings (``2`` → ``3``), as an
idle browser tab does. Reported: the gateway's RSS before and with the connections (kB per
connection), its CPU share while they are idle, connections the server dropped, and how long
the connection storm took.

``--tracemalloc DIR`` runs the gateway under ``tracemalloc`` (``bench.traced``) and writes a
top-N table of the allocation difference (by file:line) between the warmed-up server and the
server holding the connections to ``DIR/idle-tracemalloc.txt``; tracemalloc itself slows the
server and adds memory, so the RSS figures of such a run are not the ones to quote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import websockets

from .common import ROOT, SECRET, Proc, free_port, log, token, write_json


async def hold_one(url: str, tok: str, ready: list[int], state: dict[str, Any]) -> None:
    """One idle client: open, join /chat, answer pings until told to stop or dropped."""
    try:
        async with websockets.connect(url, max_size=2**20, ping_interval=None) as ws:
            first = await ws.recv()
            if not str(first).startswith("0"):
                raise RuntimeError(f"no engine.io open packet: {first!r}")
            await ws.send("40/chat," + json.dumps({"token": tok}))
            while True:
                frame = str(await ws.recv())
                if frame.startswith("40/chat,"):
                    break
                if frame.startswith("44/chat,"):
                    raise RuntimeError(f"refused: {frame}")
                if frame == "2":
                    await ws.send("3")
            ready[0] += 1
            while True:
                try:
                    frame = str(await ws.recv())
                except websockets.ConnectionClosed:
                    if not state["stopping"]:
                        state["drops"] += 1
                    return
                if frame == "2":
                    await ws.send("3")
                    state["pongs"] += 1
    except Exception as exc:  # a failed connect is counted, the run goes on
        state["failed"] += 1
        if state["failed"] <= 3:
            log(f"  connection failed: {type(exc).__name__}: {exc}")


async def clients(url: str, n: int, hold: float, server: Proc, mark) -> dict[str, Any]:
    tok = token()
    state = {"drops": 0, "failed": 0, "pongs": 0, "stopping": False}
    ready = [0]
    tasks: list[asyncio.Task[None]] = []
    started = time.monotonic()
    for i in range(n):
        tasks.append(asyncio.create_task(hold_one(url, tok, ready, state)))
        if i % 100 == 99:  # in waves, as the reference kit does
            while ready[0] + state["failed"] < i + 1 - 50:
                await asyncio.sleep(0.01)
    connect_budget = max(120.0, n / 25)  # 10,000 connections: 400 s at most
    while ready[0] + state["failed"] < n and time.monotonic() - started < connect_budget:
        await asyncio.sleep(0.05)
    connect_s = time.monotonic() - started
    log(f"  {ready[0]} connected ({state['failed']} failed) in {connect_s:.1f}s; holding {hold}s")
    await asyncio.sleep(min(10.0, hold / 3))  # the storm's garbage collected, timers settled
    rss_idle, cpu0, t0 = server.rss_kb(), server.cpu_seconds(), time.monotonic()
    mark("held")
    samples = []
    while time.monotonic() - t0 < hold:
        await asyncio.sleep(min(10.0, hold))
        samples.append(server.rss_kb())
    cpu_percent = 100 * (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    state["stopping"] = True
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "connected": ready[0],
        "failed": state["failed"],
        "dropped_while_idle": state["drops"],
        "pongs": state["pongs"],
        "connect_seconds": round(connect_s, 2),
        "held_seconds": hold,
        "rss_idle_kb": rss_idle,
        "rss_samples_kb": samples,
        "server_cpu_percent_idle": round(cpu_percent, 2),
    }


def top_table(before: Path, after: Path, n: int, conns: int) -> str:
    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    stats = new.compare_to(old, "lineno")
    total = sum(s.size_diff for s in stats)
    lines = [
        f"tracemalloc: +{total / 1024:.0f} KiB over {conns} connections "
        f"= {total / conns / 1024:.1f} KiB each (Python allocations only)",
        "",
        "| # | KiB total | B per conn | blocks per conn | where |",
        "|---|---|---|---|---|",
    ]
    for i, s in enumerate(stats[:n], 1):
        where = s.traceback[0]
        path = where.filename
        for prefix in (str(ROOT) + "/", "site-packages/"):
            if prefix in path:
                path = path.split(prefix, 1)[1]
        lines.append(
            f"| {i} | {s.size_diff / 1024:.0f} | {s.size_diff / conns:.0f} | "
            f"{s.count_diff / conns:.1f} | {path}:{where.lineno} |"
        )
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="parley-idle-"))
    env = {
        "PARLEY_MODE": "single",
        "PARLEY_PORT": str(args.port),
        "PARLEY_POD_ID": "idle",
        "PARLEY_LOG_LEVEL": "warning",
        "PARLEY_JWT_SECRET": SECRET,
        "PARLEY_SQLITE_PATH": str(work / "idle.db"),
        "PARLEY_TRACEMALLOC_DIR": str(work) if args.tracemalloc else "",
    }
    module = ["bench.traced"] if args.tracemalloc else ["services.gateway"]
    server = Proc("gateway-idle", [sys.executable, "-m", *module], env, ROOT, args.out / "logs")
    snaps: list[Path] = []

    def mark(name: str) -> None:
        if args.tracemalloc:
            path = work / f"{name}.snap"
            os.kill(server.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 60
            while not (work / "snapshot.done").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            (work / "snapshot.done").unlink(missing_ok=True)
            (work / "snapshot.snap").rename(path)
            snaps.append(path)

    try:
        base = f"http://127.0.0.1:{args.port}"
        await asyncio.to_thread(server.wait_http, base + "/readyz")
        url = f"ws://127.0.0.1:{args.port}/socket.io/?EIO=4&transport=websocket"
        await clients(url, 50, 2, server, lambda _: None)  # warm-up: imports, caches
        await asyncio.sleep(2)
        rss_before = server.rss_kb()
        await asyncio.to_thread(mark, "before")
        result = await clients(url, args.conns, args.hold, server, mark)
        result["rss_before_kb"] = rss_before
        result["kb_per_connection"] = round(
            (result["rss_idle_kb"] - rss_before) / max(1, result["connected"]), 2
        )
        if args.tracemalloc:
            table = top_table(snaps[0], snaps[1], args.top, max(1, result["connected"]))
            (args.out / "idle-tracemalloc.txt").write_text(table)
            log(table)
        log(f"  idle: {result}")
        return result
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def open_files(conns: int) -> dict[str, Any]:
    """Room for the sockets: the soft RLIMIT_NOFILE raised to the hard limit (the gateway
    inherits it; this client holds the other end of every connection), and the ephemeral port
    range checked (every client connection from 127.0.0.1 to one port takes one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = conns + 1024
    if soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(hard, max(want, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < want:
        raise SystemExit(
            f"RLIMIT_NOFILE hard limit {hard} < {want} needed for {conns} connections "
            "(raise it: ulimit -Hn, or /etc/security/limits.conf)"
        )
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    if high - low + 1 < conns + 1000:
        raise SystemExit(
            f"ephemeral port range {low}-{high} is too small for {conns} connections "
            "(sysctl net.ipv4.ip_local_port_range)"
        )
    return {"nofile_soft": soft, "nofile_hard": hard, "ephemeral_ports": f"{low}-{high}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=60, help="seconds the connections idle")
    parser.add_argument("--port", type=int, default=0, help="gateway port (0: a free one)")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    limits = open_files(args.conns)
    args.port = args.port or free_port()
    started = time.monotonic()
    result = asyncio.run(run(args))
    result["limits"] = limits
    result["run_seconds"] = round(time.monotonic() - started, 1)
    write_json(args.out / "idle_conns.json", result)


if __name__ == "__main__":
    main()
