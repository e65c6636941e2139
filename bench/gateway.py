"""Parley's gateway side by side with the reference server of the shared kit, in one run.

Fan-out (``fanout.js``: N receivers and S closed-loop senders in one room, websocket) is run
alternately against Parley and the reference, A B A B, so both see the same machine load; the
report compares medians as ratios Parley / reference. Two pairs:

- ``single``: Parley ``PARLEY_MODE=single`` (in-process fan-out, SQLite log) vs the reference
  storing in memory;
- ``cluster``: one Parley gateway in cluster mode (Redis fan-out, Kafka append before the ack,
  Redis presence and rate limits; the persistence worker is not running) vs the reference with
  its Redis adapter.

Memory per idle connection (``conn-memory.js``): a fresh server, warmed with a few connections,
its RSS (``/proc/<pid>/status`` VmRSS) before and while N websocket connections are open.

Rate limits are raised on both servers (``PARLEY_RATE_LIMITS`` / ``RATE_LIMIT``) and both verify
the same HS256 token. The server's CPU time during each fan-out run is recorded too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from . import engines
from .common import SECRET, Proc, free_port, log, median, parley, token, write_json

PARLEY_LIMITS = "chat:message=100000000/1"
REFERENCE_LIMIT = "100000000/1000"
METRICS = ("acked_per_s", "deliveries_per_s", "p50_ms", "p99_ms")


class Server:
    def __init__(self, label: str, proc: Proc, url: str) -> None:
        self.label = label
        self.proc = proc
        self.url = url


def reference(kit: Path, name: str, log_dir: Path, redis_url: str | None = None) -> Server:
    port = free_port()
    env = {"PORT": str(port), "RATE_LIMIT": REFERENCE_LIMIT, "JWT_SECRET": SECRET}
    if redis_url:
        env["REDIS_URL"] = redis_url
    proc = Proc(name, ["node", "reference-server.js"], env, kit, log_dir)
    proc.wait_port(port)
    return Server("reference", proc, f"http://127.0.0.1:{port}")


def parley_gateway(name: str, env: dict[str, str], log_dir: Path) -> Server:
    proc, url = parley(name, "gateway", {"PARLEY_RATE_LIMITS": PARLEY_LIMITS, **env}, log_dir)
    proc.wait_http(url + "/readyz")
    return Server("parley", proc, url)


def node(kit: Path, script: str, *args: object, timeout: float) -> str:
    """Run a kit script; returns the last line it printed."""
    result = subprocess.run(
        ["node", script, *map(str, args)],
        cwd=kit,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script} failed: {result.stdout[-500:]} {result.stderr[-500:]}")
    return result.stdout.strip().splitlines()[-1]


def fanout(kit: Path, server: Server, tok: str, receivers: int, senders: int, seconds: int):
    cpu0, t0 = server.proc.cpu_seconds(), time.monotonic()
    line = node(
        kit,
        "fanout.js",
        server.url,
        "/chat",
        tok,
        receivers,
        senders,
        seconds,
        timeout=seconds + 120,
    )
    stats = json.loads(line)
    cpu, wall = server.proc.cpu_seconds() - cpu0, time.monotonic() - t0
    stats["server"] = server.label
    stats["server_cpu_percent"] = round(100 * cpu / wall, 1)  # connect + warm-up included
    stats["server_cpu_ms_per_1k_deliveries"] = round(
        1e6 * cpu / max(1.0, stats["deliveries_per_s"] * stats["seconds"]), 1
    )
    log(
        f"  {server.label:9s} acked/s {stats['acked_per_s']:>9} deliveries/s "
        f"{stats['deliveries_per_s']:>10} p50 {stats['p50_ms']} ms p99 {stats['p99_ms']} ms "
        f"errors {stats['errors']} cpu {stats['server_cpu_percent']}%"
    )
    return stats


def compare(
    kit: Path, a: Server, b: Server, rounds: int, receivers: int, senders: int, seconds: int
):
    tok = token()
    runs = []
    for r in range(rounds):
        for server in (a, b):
            log(f"fanout round {r + 1}/{rounds}: {server.label} ({receivers}x{senders})")
            runs.append({"round": r + 1, **fanout(kit, server, tok, receivers, senders, seconds)})
    return {"runs": runs, "summary": summarize(runs)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in (*METRICS, "server_cpu_percent", "server_cpu_ms_per_1k_deliveries"):
        p = median([r[metric] for r in runs if r["server"] == "parley"])
        ref = median([r[metric] for r in runs if r["server"] == "reference"])
        out[metric] = {
            "parley": p,
            "reference": ref,
            "ratio": round(p / ref, 3) if p is not None and ref else None,
        }
    out["errors"] = {
        s: sum(r["errors"] for r in runs if r["server"] == s) for s in ("parley", "reference")
    }
    return out


def conn_memory(kit: Path, server: Server, conns: int, hold: int = 12) -> dict[str, Any]:
    """RSS before (after a warm-up) and with ``conns`` idle websocket connections open.

    RSS is sampled 2, 6 and 10 s after the last connection is up; the last sample counts, so
    garbage left by the connection storm has had time to be collected.
    """
    tok = token()
    node(kit, "conn-memory.js", server.url, "/chat", tok, 50, 1, timeout=60)  # warm-up
    time.sleep(2)
    before = server.proc.rss_kb()
    started = time.monotonic()
    proc = subprocess.Popen(
        ["node", "conn-memory.js", server.url, "/chat", tok, str(conns), str(hold)],
        cwd=kit,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()  # "up N" once every connection is established
        if not line.startswith("up"):
            raise RuntimeError(f"conn-memory.js: {line!r} {proc.stderr.read()[-500:]}")
        up = time.monotonic()
        samples = []
        for at in (2, 6, 10):
            time.sleep(max(0.0, up + at - time.monotonic()))
            samples.append(server.proc.rss_kb())
        proc.wait(hold + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    per_conn = (samples[-1] - before) / conns
    log(
        f"  {server.label:9s} RSS {before} kB -> {samples} kB with {conns} connections: "
        f"{per_conn:.1f} kB each (all up in {up - started:.1f}s)"
    )
    return {
        "connections": conns,
        "rss_before_kb": before,
        "rss_with_connections_kb": samples[-1],
        "rss_samples_kb": samples,
        "kb_per_connection": round(per_conn, 2),
        "connect_seconds": round(up - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kit", type=Path, required=True, help="the kit dir, npm-installed")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--receivers", type=int, default=200)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--conns", type=int, default=3000)
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    logs = args.out / "logs"
    results: dict[str, Any] = {
        "receivers": args.receivers,
        "senders": args.senders,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "connections": args.conns,
    }
    fan = (args.rounds, args.receivers, args.senders, args.seconds)

    # 1. single node: Parley single mode vs the reference in memory
    log("single node: Parley PARLEY_MODE=single vs reference")
    db = args.out / "tmp" / "single.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    started: list[Server] = []
    try:
        single = {"PARLEY_MODE": "single", "PARLEY_SQLITE_PATH": str(db)}
        p = parley_gateway("gateway-single", single, logs)
        started.append(p)
        ref = reference(args.kit, "reference-single", logs)
        started.append(ref)
        results["single"] = compare(args.kit, p, ref, *fan)
    finally:
        for s in started:
            s.proc.stop()

    # 2. memory per idle connection, on fresh processes
    log(f"memory per idle connection ({args.conns} websocket connections)")
    memory: dict[str, Any] = {}
    for make in (
        lambda: parley_gateway(
            "gateway-memory", {"PARLEY_MODE": "single", "PARLEY_SQLITE_PATH": str(db)}, logs
        ),
        lambda: reference(args.kit, "reference-memory", logs),
    ):
        server = make()
        try:
            memory[server.label] = conn_memory(args.kit, server, args.conns)
        finally:
            server.proc.stop()
    memory["ratio"] = round(
        memory["parley"]["kb_per_connection"] / memory["reference"]["kb_per_connection"], 2
    )
    results["memory"] = memory

    # 3. cluster: one Parley gateway on Redis + Kafka + Cassandra vs the reference on Redis
    if not args.skip_cluster:
        log("cluster: Parley gateway (Redis, Kafka, Cassandra) vs reference + Redis adapter")
        settings = engines.bench_settings(engines.run_id(), "gw")
        asyncio.run(engines.provision(settings))
        started = []
        try:
            p = parley_gateway("gateway-cluster", engines.service_env(settings), logs)
            started.append(p)
            ref = reference(args.kit, "reference-redis", logs, redis_url=settings.redis_url)
            started.append(ref)
            results["cluster"] = compare(args.kit, p, ref, *fan)
        finally:
            for s in started:
                s.proc.stop()
            asyncio.run(engines.remove(settings))
    shutil.rmtree(db.parent, ignore_errors=True)
    write_json(args.out / "gateway.json", results)


if __name__ == "__main__":
    main()
