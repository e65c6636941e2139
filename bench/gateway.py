"""Parley's gateway side by side with the reference server of the shared kit, in one run.

Fan-out (``fanout.js``: N receivers and S closed-loop senders in one room, websocket) is run
alternately against Parley and the reference, A B A B, so both see the same machine load; the
report compares medians as ratios Parley / reference. Three pairs:

- ``single``: Parley ``PARLEY_MODE=single`` (in-process fan-out, SQLite log) vs the reference
  storing in memory;
- ``cluster``: one Parley gateway in cluster mode (Redis fan-out, Kafka append before the ack,
  Redis presence and rate limits; the persistence worker is not running) vs the reference with
  its Redis adapter;
- ``cluster2``: two such gateways (one Redis prefix) vs two references with the Redis adapter;
  ``fanout.js`` gets both URLs and spreads its clients over them round-robin.

On the cluster servers, in the same run: ``fixed`` offers half the reference's saturated acked
sends/s (median of ``cluster``) open loop with ``bench/fixed_rate.js`` (ack and delivery
latency, missing acks); ``profile`` samples the gateway with py-spy during one extra fan-out
run (``bench.profiling``); ``interest`` reads both pods' fan-out counters around N rooms'
traffic (``bench.interest``). ``--parts`` picks which of these run.

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

from . import engines, interest, profiling
from .common import ROOT, SECRET, Proc, free_port, log, median, parley, token, write_json

PARLEY_LIMITS = "chat:message=100000000/1"
REFERENCE_LIMIT = "100000000/1000"
METRICS = ("acked_per_s", "deliveries_per_s", "p50_ms", "p99_ms")


class Server:
    """One side of a comparison: one or more processes; ``url`` is comma-separated when there
    are several (the kit's clients spread their connections over them round-robin)."""

    def __init__(self, label: str, procs: list[Proc], urls: list[str]) -> None:
        self.label = label
        self.procs = procs
        self.urls = urls

    @property
    def proc(self) -> Proc:
        return self.procs[0]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds() for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.stop()

    @staticmethod
    def join(servers: list[Server]) -> Server:
        return Server(
            servers[0].label,
            [p for s in servers for p in s.procs],
            [u for s in servers for u in s.urls],
        )


def reference(kit: Path, name: str, log_dir: Path, redis_url: str | None = None) -> Server:
    port = free_port()
    env = {"PORT": str(port), "RATE_LIMIT": REFERENCE_LIMIT, "JWT_SECRET": SECRET}
    if redis_url:
        env["REDIS_URL"] = redis_url
    proc = Proc(name, ["node", "reference-server.js"], env, kit, log_dir)
    proc.wait_port(port)
    return Server("reference", [proc], [f"http://127.0.0.1:{port}"])


def parley_gateway(name: str, env: dict[str, str], log_dir: Path) -> Server:
    proc, url = parley(name, "gateway", {"PARLEY_RATE_LIMITS": PARLEY_LIMITS, **env}, log_dir)
    proc.wait_http(url + "/readyz")
    return Server("parley", [proc], [url])


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
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
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
    cpu, wall = server.cpu_seconds() - cpu0, time.monotonic() - t0
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


FIXED_METRICS = (
    ("ack_p50_ms", ("ack", "p50")),
    ("ack_p99_ms", ("ack", "p99")),
    ("delivery_p50_ms", ("delivery", "p50")),
    ("delivery_p99_ms", ("delivery", "p99")),
    ("sent_per_s", ("sent_per_s",)),
    ("schedule_late_p99_ms", ("schedule_late", "p99")),
    ("server_cpu_percent", ("server_cpu_percent",)),
)


def fixed_rate(
    kit: Path, server: Server, tok: str, receivers: int, senders: int, rate: float, seconds: int
) -> dict[str, Any]:
    """One open-loop run of ``bench/fixed_rate.js`` (copied into the kit, so it uses the same
    socket.io-client as ``fanout.js``)."""
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    line = node(
        kit,
        "parley-fixed-rate.js",
        server.url,
        "/chat",
        tok,
        receivers,
        senders,
        round(rate, 1),
        seconds,
        3,
        timeout=seconds + 120,
    )
    stats = json.loads(line)
    stats["server"] = server.label
    stats["server_cpu_percent"] = round(
        100 * (server.cpu_seconds() - cpu0) / (time.monotonic() - t0), 1
    )
    for key, path in FIXED_METRICS:
        value: Any = stats
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        stats[key] = value
    log(
        f"  {server.label:9s} offered {rate:.0f}/s sent {stats['sent']} acked {stats['acked']} "
        f"missing acks {stats['missing_acks']} errors {stats['errors']}; ack p50/p99 "
        f"{stats['ack_p50_ms']}/{stats['ack_p99_ms']} ms; delivery p50/p99 "
        f"{stats['delivery_p50_ms']}/{stats['delivery_p99_ms']} ms; deliveries "
        f"{stats['deliveries']}/{stats['deliveries_expected']}; cpu {stats['server_cpu_percent']}%"
    )
    return stats


def fixed_compare(
    kit: Path,
    a: Server,
    b: Server,
    rounds: int,
    receivers: int,
    senders: int,
    rate: float,
    seconds: int,
) -> dict[str, Any]:
    shutil.copy(ROOT / "bench" / "fixed_rate.js", kit / "parley-fixed-rate.js")
    tok = token()
    runs = []
    for r in range(rounds):
        for server in (a, b):
            log(f"fixed rate round {r + 1}/{rounds}: {server.label} ({rate:.0f} msg/s offered)")
            stats = fixed_rate(kit, server, tok, receivers, senders, rate, seconds)
            runs.append({"round": r + 1, **stats})
    summary: dict[str, Any] = {}
    for key, _ in FIXED_METRICS:
        p = median([r[key] for r in runs if r["server"] == "parley"])
        ref = median([r[key] for r in runs if r["server"] == "reference"])
        summary[key] = {
            "parley": p,
            "reference": ref,
            "ratio": round(p / ref, 3) if p is not None and ref else None,
        }
    for key in ("sent", "acked", "errors", "missing_acks", "deliveries", "deliveries_expected"):
        summary[key] = {
            s: sum(r[key] for r in runs if r["server"] == s) for s in (a.label, b.label)
        }
    summary["target_met"] = {
        "ack_p99_le_50ms": (summary["ack_p99_ms"]["parley"] or 1e9) <= 50,
        "delivery_p99_le_100ms": (summary["delivery_p99_ms"]["parley"] or 1e9) <= 100,
    }
    return {
        "offered_per_s": round(rate, 1),
        "receivers": receivers,
        "senders": senders,
        "seconds": seconds,
        "rounds": rounds,
        "runs": runs,
        "summary": summary,
    }


def profile_run(
    kit: Path, server: Server, out: Path, receivers: int, senders: int, seconds: int
) -> dict[str, Any]:
    """One extra fan-out run (not counted in the comparison) with py-spy sampling the gateway.

    ``fanout.js`` runs ``seconds + 4`` s; py-spy attaches 3 s after it started (clients
    connected, sends running) and samples ``seconds`` s, so the profile is the saturated phase.
    """
    lead = 3
    proc = subprocess.Popen(
        [
            "node",
            "fanout.js",
            server.url,
            "/chat",
            token(),
            *map(str, (receivers, senders, seconds + lead + 1)),
        ],
        cwd=kit,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(lead)
        result = profiling.record(server.proc.pid, seconds, out, "gateway-cluster")
        stdout, stderr = proc.communicate(timeout=seconds + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode == 0 and stdout.strip():
        result["fanout"] = json.loads(stdout.strip().splitlines()[-1])
    else:
        result["fanout_error"] = (stdout + stderr)[-500:]
    return result


ALL_PARTS = ("single", "memory", "cluster", "fixed", "profile", "cluster2", "interest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kit", type=Path, required=True, help="the kit dir, npm-installed")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--receivers", type=int, default=200)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--conns", type=int, default=3000)
    parser.add_argument(
        "--parts",
        default=",".join(ALL_PARTS),
        help=f"comma-separated, any of {','.join(ALL_PARTS)} (default: all)",
    )
    parser.add_argument("--skip-cluster", action="store_true", help="only single and memory")
    parser.add_argument(
        "--fixed-rate",
        type=float,
        help="msg/s offered (default: half of the "
        "reference's median acked sends/s in the cluster pair)",
    )
    parser.add_argument("--fixed-seconds", type=int, default=10)
    parser.add_argument(
        "--fixed-senders", type=int, default=4, help="senders the offered rate is spread over"
    )
    parser.add_argument("--fixed-rounds", type=int, default=2)
    parser.add_argument("--profile-seconds", type=int, default=8)
    parser.add_argument("--interest-rooms", type=int, default=8)
    parser.add_argument("--interest-members", type=int, default=10)
    parser.add_argument("--interest-messages", type=int, default=40)
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - set(ALL_PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if args.skip_cluster:
        parts &= {"single", "memory"}
    logs = args.out / "logs"
    path = args.out / "gateway.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    results.update(
        {
            "receivers": args.receivers,
            "senders": args.senders,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "connections": args.conns,
        }
    )
    fan = (args.rounds, args.receivers, args.senders, args.seconds)
    db = args.out / "tmp" / "single.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    single = {"PARLEY_MODE": "single", "PARLEY_SQLITE_PATH": str(db)}

    def timed(name: str, started: float) -> None:
        results.setdefault("part_seconds", {})[name] = round(time.monotonic() - started, 1)

    # 1. single node: Parley single mode vs the reference in memory
    if "single" in parts:
        log("single node: Parley PARLEY_MODE=single vs reference")
        t = time.monotonic()
        started: list[Server] = []
        try:
            started.append(parley_gateway("gateway-single", single, logs))
            started.append(reference(args.kit, "reference-single", logs))
            results["single"] = compare(args.kit, started[0], started[1], *fan)
        finally:
            for s in started:
                s.stop()
        timed("single", t)

    # 2. memory per idle connection, on fresh processes
    if "memory" in parts:
        log(f"memory per idle connection ({args.conns} websocket connections)")
        t = time.monotonic()
        memory: dict[str, Any] = {}
        for make in (
            lambda: parley_gateway("gateway-memory", single, logs),
            lambda: reference(args.kit, "reference-memory", logs),
        ):
            server = make()
            try:
                memory[server.label] = conn_memory(args.kit, server, args.conns)
            finally:
                server.stop()
        memory["ratio"] = round(
            memory["parley"]["kb_per_connection"] / memory["reference"]["kb_per_connection"], 2
        )
        results["memory"] = memory
        timed("memory", t)

    # 3. cluster mode: Parley gateways on Redis + Kafka + Cassandra vs the reference on Redis
    if parts & {"cluster", "fixed", "profile", "cluster2", "interest"}:
        settings = engines.bench_settings(engines.run_id(), "gw")
        asyncio.run(engines.provision(settings))
        env = engines.service_env(settings)
        started = []
        try:
            p1 = parley_gateway("gateway-cluster", env, logs)
            started.append(p1)
            if parts & {"cluster", "fixed"}:  # the references only where they are compared
                r1 = reference(args.kit, "reference-redis", logs, redis_url=settings.redis_url)
                started.append(r1)
            if "cluster" in parts:
                log("cluster: one Parley gateway (Redis, Kafka) vs reference + Redis adapter")
                t = time.monotonic()
                results["cluster"] = compare(args.kit, p1, r1, *fan)
                timed("cluster", t)
            if "fixed" in parts:
                rate = args.fixed_rate
                if rate is None:
                    saturated = (
                        results.get("cluster", {})
                        .get("summary", {})
                        .get("acked_per_s", {})
                        .get("reference")
                    )
                    if not saturated:
                        raise SystemExit("fixed: no cluster pair measured; pass --fixed-rate")
                    rate = saturated / 2
                log(f"fixed offered load: {rate:.0f} msg/s to one cluster gateway and reference")
                t = time.monotonic()
                results["fixed"] = fixed_compare(
                    args.kit,
                    p1,
                    r1,
                    args.fixed_rounds,
                    args.receivers,
                    args.fixed_senders,
                    rate,
                    args.fixed_seconds,
                )
                timed("fixed", t)
            if "profile" in parts:
                log("profile: py-spy on the cluster gateway during a fan-out run")
                t = time.monotonic()
                results["profile"] = profile_run(
                    args.kit, p1, args.out, args.receivers, args.senders, args.profile_seconds
                )
                timed("profile", t)
            if parts & {"cluster2", "interest"}:
                p2 = parley_gateway("gateway-cluster-2", env, logs)
                started.append(p2)
                if "cluster2" in parts:
                    r2 = reference(
                        args.kit, "reference-redis-2", logs, redis_url=settings.redis_url
                    )
                    started.append(r2)
                    if "cluster" not in parts and "fixed" not in parts:
                        r1 = reference(args.kit, "reference-redis", logs, settings.redis_url)
                        started.append(r1)
                    log("two gateways through Redis vs two references with the Redis adapter")
                    t = time.monotonic()
                    results["cluster2"] = compare(
                        args.kit, Server.join([p1, p2]), Server.join([r1, r2]), *fan
                    )
                    timed("cluster2", t)
                if "interest" in parts:
                    log(
                        f"interest: {args.interest_rooms} rooms, members of each on one of "
                        "the 2 gateways; per-pod fan-out counters"
                    )
                    t = time.monotonic()
                    results["interest"] = asyncio.run(
                        interest.run(
                            [p1.url, p2.url],
                            rooms=args.interest_rooms,
                            members=args.interest_members,
                            messages=args.interest_messages,
                        )
                    )
                    timed("interest", t)
        finally:
            for s in started:
                s.stop()
            asyncio.run(engines.remove(settings))
    shutil.rmtree(db.parent, ignore_errors=True)
    write_json(path, results)


if __name__ == "__main__":
    main()
