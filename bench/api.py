"""Server API publish beside the Socket.IO path: throughput and delivery latency.

Against running gateways (``--urls``, the first publishes; they need ``PARLEY_API_KEYS`` with a
``publish`` key and the JWT secret in ``--secret``): ``--receivers`` Socket.IO clients spread
over the gateways join one room; then ``--messages`` messages go in once through
``POST /api/v1/rooms/{room}/messages`` (``--concurrency`` requests in flight) and once through
``chat:message`` from one socket per in-flight slot. For each path: accepted messages/s
(201 or ack ok), and delivery latency from the send to each receiver's copy (p50/p95/p99).

    PYTHONPATH=. .venv/bin/python bench/api.py --urls http://127.0.0.1:8701,http://127.0.0.1:8702 \\
        --key "$KEY" --secret "$PARLEY_JWT_SECRET"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import jwt
import socketio

from parley_client import ParleyApi


def token(secret: str, user: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "username": user, "iat": now, "exp": now + 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


class Receiver:
    def __init__(self, url: str, tok: str, sent: dict[str, float]) -> None:
        self.url, self.tok, self.sent = url, tok, sent
        self.sio = socketio.AsyncClient(reconnection=False)
        self.latencies: list[float] = []
        self.sio.on("chat:message", self.on_message, namespace="/chat")

    async def on_message(self, message: dict[str, Any]) -> None:
        started = self.sent.get(message.get("text", ""))
        if started is not None:
            self.latencies.append(time.perf_counter() - started)


async def run_path(
    name: str, send, count: int, concurrency: int, receivers: list[Receiver], sent: dict
) -> dict[str, Any]:
    for r in receivers:
        r.latencies.clear()
    queue = list(range(count))
    started = time.perf_counter()

    async def worker(slot: int) -> None:
        while queue:
            n = queue.pop()
            text = f"{name}-{n}-{uuid.uuid4().hex[:6]}"
            sent[text] = time.perf_counter()
            await send(slot, text)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    want = count * len(receivers)
    deadline = time.monotonic() + 30
    while sum(len(r.latencies) for r in receivers) < want and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    lat = [x for r in receivers for x in r.latencies]
    return {
        "path": name,
        "messages": count,
        "accepted_per_s": round(count / elapsed, 1),
        "deliveries": len(lat),
        "expected": want,
        "p50_ms": round(pct(lat, 50) * 1000, 1),
        "p95_ms": round(pct(lat, 95) * 1000, 1),
        "p99_ms": round(pct(lat, 99) * 1000, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--receivers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    urls = args.urls.split(",")
    room = "bench-" + uuid.uuid4().hex[:8]
    sent: dict[str, float] = {}
    receivers = [
        Receiver(urls[i % len(urls)], token(args.secret, f"r{i}"), sent)
        for i in range(args.receivers)
    ]
    senders = []
    try:
        for r in receivers:
            await r.sio.connect(r.url, namespaces=["/chat"], auth={"token": r.tok},
                                transports=["websocket"])  # fmt: skip
            await r.sio.call("room:join", room, namespace="/chat")
        for i in range(args.concurrency):
            s = socketio.AsyncClient(reconnection=False)
            await s.connect(urls[0], namespaces=["/chat"], transports=["websocket"],
                            auth={"token": token(args.secret, f"s{i}")})  # fmt: skip
            await s.call("room:join", room, namespace="/chat")
            senders.append(s)
        async with ParleyApi(urls[0], args.key) as api:

            async def via_api(_slot: int, text: str) -> None:
                await api.publish(room, text)

            async def via_socket(slot: int, text: str) -> None:
                ack = await senders[slot].call(
                    "chat:message", {"roomId": room, "text": text}, namespace="/chat"
                )
                assert ack["status"] == "ok", ack

            results = []
            for name, send in (("api", via_api), ("socketio", via_socket)):
                results.append(
                    await run_path(name, send, args.messages, args.concurrency, receivers, sent)
                )
        print(json.dumps(results, indent=2))
    finally:
        for c in [r.sio for r in receivers] + senders:
            await c.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
