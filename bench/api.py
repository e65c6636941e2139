"""Server API publish beside the Socket.IO path: throughput and delivery latency, same run.

``--receivers`` Socket.IO clients spread over the gateways join one room; then, per round,
``--messages`` messages go through ``POST /api/v1/rooms/{room}/messages`` (``parley_client``,
``--concurrency`` requests in flight) and the same number through ``chat:message`` acks from
one socket per in-flight slot, alternating A B A B so both paths see the same machine load.
Each path is also run once with one request in flight (``serial``), which separates the cost
of a request from queueing. A third path sends the very same API request from ``aiohttp``
instead of ``parley_client`` (httpx): the client library is part of what is measured (see the
README's figures). For each run: accepted messages/s (201 or ack ok), delivery latency
from the send to each receiver's copy (p50/p95/p99), deliveries counted against the expected
number, and the publishing gateway's CPU per accepted message.

Standalone (the default): it provisions benchmark-private names on the shared engines
(``bench/engines.py``: keyspace, topics, Redis prefix), starts two cluster-mode gateways with
an API key and raised rate limits (no persistence worker: delivery does not wait for it),
measures, stops them and removes the names. ``--urls`` measures running gateways instead (then
``--key`` and ``--secret`` are theirs; no CPU figures). Writes ``<out>/api.json``.

    PYTHONPATH=. .venv/bin/python -m bench.api --out bench-results/api-try
    PYTHONPATH=. .venv/bin/python -m bench.api --out DIR --urls http://a,http://b --key K --secret S
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import socketio
from aiokafka.admin import AIOKafkaAdminClient

from parley_client import ParleyApi

from . import engines
from .common import SECRET, Proc, log, median, parley, write_json

NS = "/chat"


def token(secret: str, user: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "username": user, "iat": now, "exp": now + 3 * 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


class Receiver:
    def __init__(self, url: str, tok: str, sent: dict[str, float]) -> None:
        self.url, self.tok, self.sent = url, tok, sent
        self.sio = socketio.AsyncClient(reconnection=False)
        self.latencies: list[float] = []
        self.sio.on("chat:message", self.on_message, namespace=NS)

    async def on_message(self, message: dict[str, Any]) -> None:
        started = self.sent.get(message.get("text", ""))
        if started is not None:
            self.latencies.append(time.perf_counter() - started)


async def run_path(
    name: str,
    send: Callable[[int, str], Awaitable[None]],
    count: int,
    concurrency: int,
    receivers: list[Receiver],
    sent: dict[str, float],
    publisher: Proc | None,
    other: Proc | None = None,
) -> dict[str, Any]:
    for r in receivers:
        r.latencies.clear()
    queue = list(range(count))
    errors = 0
    answered: list[float] = []  # send → 201 / ack
    cpu0 = publisher.cpu_seconds() if publisher else 0.0
    other0 = other.cpu_seconds() if other else 0.0
    client0 = time.process_time()
    lags: list[float] = []

    async def loop_lag() -> None:  # how late this process's event loop wakes a 10 ms sleep
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t - 0.01)

    monitor = asyncio.create_task(loop_lag())
    started = time.perf_counter()

    async def worker(slot: int) -> None:
        nonlocal errors
        while queue:
            n = queue.pop()
            text = f"{name}-{n}-{uuid.uuid4().hex[:6]}"
            sent[text] = t0 = time.perf_counter()
            try:
                await send(slot, text)
                answered.append(time.perf_counter() - t0)
            except Exception as exc:  # counted; the run goes on
                errors += 1
                if errors <= 3:
                    log(f"  {name}: send failed: {exc}")

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = (publisher.cpu_seconds() - cpu0) if publisher else None
    want = (count - errors) * len(receivers)
    deadline = time.monotonic() + 30
    while sum(len(r.latencies) for r in receivers) < want and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    lat = [x for r in receivers for x in r.latencies]
    wall = time.perf_counter() - started  # sends, then the last delivery (or the 30 s cap)
    monitor.cancel()
    client_cpu = time.process_time() - client0
    result = {
        "path": name,
        "concurrency": concurrency,
        "messages": count,
        "errors": errors,
        "accepted_per_s": round((count - errors) / elapsed, 1),
        "deliveries": len(lat),
        "expected": want,
        "p50_ms": round(pct(lat, 50) * 1000, 1),
        "p95_ms": round(pct(lat, 95) * 1000, 1),
        "p99_ms": round(pct(lat, 99) * 1000, 1),
        "answer_p50_ms": round(pct(answered, 50) * 1000, 1),
        "answer_p95_ms": round(pct(answered, 95) * 1000, 1),
        "p50_ms_by_gateway": {
            url: round(
                pct([x for r in receivers if r.url == url for x in r.latencies], 50) * 1000, 1
            )
            for url in sorted({r.url for r in receivers})
        },
        "publisher_cpu_ms_per_message": (
            round(1000 * cpu / max(1, count - errors), 2) if cpu is not None else None
        ),
        # this process (receivers, senders, HTTP client) and the other gateway, over the run:
        # near 100 % the client itself is the bottleneck and its latencies grow
        "client_cpu_percent": round(100 * client_cpu / wall, 1),
        "client_loop_lag_p99_ms": round(pct(lags, 99) * 1000, 1),
        "other_gateway_cpu_percent": (
            round(100 * (other.cpu_seconds() - other0) / wall, 1) if other else None
        ),
        "publisher_cpu_percent": (
            round(100 * (publisher.cpu_seconds() - cpu0) / wall, 1) if publisher else None
        ),
    }
    log(
        f"  {name:8s} x{concurrency}: {result['accepted_per_s']}/s accepted, p50 "
        f"{result['p50_ms']} ms p95 {result['p95_ms']} ms (answer p50 {result['answer_p50_ms']} "
        f"ms), {len(lat)}/{want} delivered, "
        f"cpu {result['publisher_cpu_ms_per_message']} ms/msg; cpu % client "
        f"{result['client_cpu_percent']} gateways {result['publisher_cpu_percent']} / "
        f"{result['other_gateway_cpu_percent']}; client loop lag p99 "
        f"{result['client_loop_lag_p99_ms']} ms; p50 by gateway {result['p50_ms_by_gateway']}"
    )
    return result


def summarize(runs: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in dict.fromkeys(r["path"] for r in runs):
        mine = [r for r in runs if r["path"] == path and r["concurrency"] == concurrency]
        keys = (
            "accepted_per_s",
            "answer_p50_ms",
            "answer_p95_ms",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "publisher_cpu_ms_per_message",
            "client_cpu_percent",
            "publisher_cpu_percent",
        )
        out[path] = {k: median([r[k] for r in mine]) for k in keys}
        out[path]["deliveries"] = sum(r["deliveries"] for r in mine)
        out[path]["expected"] = sum(r["expected"] for r in mine)
        out[path]["errors"] = sum(r["errors"] for r in mine)
    return out


async def measure(
    urls: list[str],
    key: str,
    secret: str,
    args: argparse.Namespace,
    publisher: Proc | None,
    other: Proc | None = None,
) -> dict[str, Any]:
    room = "bench-" + uuid.uuid4().hex[:8]
    sent: dict[str, float] = {}
    receivers = [
        Receiver(urls[i % len(urls)], token(secret, f"r{i}"), sent) for i in range(args.receivers)
    ]
    senders: list[socketio.AsyncClient] = []
    try:
        for r in receivers:
            await r.sio.connect(r.url, namespaces=[NS], auth={"token": r.tok},
                                transports=["websocket"])  # fmt: skip
            await r.sio.call("room:join", room, namespace=NS)
        for i in range(args.concurrency):
            s = socketio.AsyncClient(reconnection=False)
            await s.connect(urls[0], namespaces=[NS], transports=["websocket"],
                            auth={"token": token(secret, f"s{i}")})  # fmt: skip
            await s.call("room:join", room, namespace=NS)
            senders.append(s)
        raw_url = f"{urls[0]}/api/v1/rooms/{room}/messages"
        async with (
            ParleyApi(urls[0], key) as api,
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as raw,
        ):

            async def via_api(_slot: int, text: str) -> None:
                await api.publish(room, text)

            async def via_api_raw(_slot: int, text: str) -> None:
                async with raw.post(raw_url, json={"text": text}) as response:
                    if response.status != 201:
                        raise RuntimeError(f"HTTP {response.status}: {await response.text()}")

            async def via_socket(slot: int, text: str) -> None:
                ack = await senders[slot].call(
                    "chat:message", {"roomId": room, "text": text}, namespace=NS
                )
                if ack.get("status") != "ok":
                    raise RuntimeError(f"ack {ack}")

            known = {"api": via_api, "api-aiohttp": via_api_raw, "socketio": via_socket}
            paths = [(name, known[name]) for name in args.paths.split(",")]
            # warm-up: connections, JIT-free but caches and pools filled
            for name, send in paths:
                await run_path(name, send, 20, 1, receivers, sent, None)
            runs = []
            for rnd in range(args.rounds):
                log(f"round {rnd + 1}/{args.rounds}")
                for name, send in paths:
                    runs.append(
                        await run_path(
                            name,
                            send,
                            args.messages,
                            args.concurrency,
                            receivers,
                            sent,
                            publisher,
                            other,
                        )
                    )
            serial = max(50, args.messages // 10)
            for name, send in paths:
                runs.append(
                    await run_path(name, send, serial, 1, receivers, sent, publisher, other)
                )
    finally:
        for c in [r.sio for r in receivers] + senders:
            await c.disconnect()
    return {
        "receivers": args.receivers,
        "messages": args.messages,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "gateways": len(urls),
        "runs": runs,
        "summary": summarize(runs, args.concurrency),
        "serial": summarize(runs, 1),
    }


async def drop_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        if gone := [t for t in topics if t in existing]:
            await admin.delete_topics(gone)
    finally:
        await admin.close()


def standalone(args: argparse.Namespace) -> dict[str, Any]:
    """Two cluster gateways on private engine names, measured, stopped, names removed."""
    settings = engines.bench_settings(engines.run_id(), "api")
    key = secrets.token_urlsafe(24)
    env = {
        **engines.service_env(settings),
        "PARLEY_API_KEYS": f"bench:{key}:publish",
        "PARLEY_API_RATE_LIMIT": "100000000/1",
        "PARLEY_RATE_LIMITS": "chat:message=100000000/1,room:join=100000000/1",
    }
    logs = args.out / "logs"
    asyncio.run(engines.provision(settings))
    gateways: list[tuple[Proc, str]] = []
    try:
        for name in ("gateway-api-a", "gateway-api-b"):
            gateways.append(parley(name, "gateway", env, logs))
        for proc, url in gateways:
            proc.wait_http(url + "/readyz")
        log(f"API bench: 2 cluster gateways {[u for _, u in gateways]} on {settings.kafka_topic}")
        urls = [u for _, u in gateways]
        return asyncio.run(measure(urls, key, SECRET, args, gateways[0][0], gateways[1][0]))
    finally:
        for proc, _ in gateways:
            proc.stop()
        asyncio.run(engines.remove(settings))
        events = settings.kafka_topic + ".events"  # engines.remove knows the messages topics
        asyncio.run(drop_topics(settings.kafka_bootstrap, [events]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="writes <out>/api.json")
    parser.add_argument("--urls", help="running gateways (the first publishes); default: start")
    parser.add_argument("--key", help="with --urls: a key with the publish scope")
    parser.add_argument("--secret", help="with --urls: their HS256 JWT secret")
    parser.add_argument("--receivers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=1000, help="per path and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--paths",
        default="api,api-aiohttp,socketio",
        help="in this order: api (parley_client), api-aiohttp (the same request from aiohttp), "
        "socketio (chat:message acks)",
    )
    args = parser.parse_args()
    if args.urls:
        if not (args.key and args.secret):
            parser.error("--urls needs --key and --secret")
        results = asyncio.run(measure(args.urls.split(","), args.key, args.secret, args, None))
        results["mode"] = "running gateways"
    else:
        results = standalone(args)
        results["mode"] = "standalone: 2 cluster gateways on the shared engines"
    write_json(args.out / "api.json", results)
    log(f"wrote {args.out / 'api.json'}")


if __name__ == "__main__":
    main()
