"""A small steady chat load that counts what its clients receive, with timestamps.

``users`` clients (WebSocket, alternating between the two gateways so fan-out crosses Redis)
join ``rooms`` rooms round-robin; each sends ``chat:message`` every ``period`` seconds (under the
10 per 10 s limit), staggered so the total rate is even. Every event a client receives on
``/chat`` is recorded with its arrival time: the count the dashboards' deliveries/s must match.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import socketio

NAMESPACE = "/chat"


@dataclass
class Counted:
    received: list[float] = field(default_factory=list)  # arrival times of every /chat event
    accepted: list[float] = field(default_factory=list)  # times of ok acks
    errors: int = 0
    started: float = 0.0
    ended: float = 0.0

    def received_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.received if start < t <= end)

    def accepted_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.accepted if start < t <= end)


async def connect(url: str, token: str, counted: Counted) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)

    async def record(event: str, *args) -> None:
        counted.received.append(time.time())

    sio.on("*", record, namespace=NAMESPACE)
    await sio.connect(
        url,
        namespaces=[NAMESPACE],
        auth={"token": token},
        transports=["websocket"],
        wait_timeout=10,
    )
    return sio


async def run(
    urls: list[str],
    token,
    users: int = 12,
    rooms: int = 3,
    seconds: float = 20.0,
    period: float = 1.25,
) -> Counted:
    counted = Counted()
    tag = uuid.uuid4().hex[:6]
    clients = [
        await connect(urls[i % len(urls)], token(f"load-{tag}-{i}"), counted) for i in range(users)
    ]
    try:
        room_of = [f"load-{tag}-{i % rooms}" for i in range(users)]
        for sio, room in zip(clients, room_of, strict=True):
            ack = await sio.call("room:join", room, namespace=NAMESPACE, timeout=10)
            assert ack["status"] == "ok", ack
        await asyncio.sleep(1)  # joins and presence events settle before the steady phase
        counted.started = time.time()

        async def sender(i: int) -> None:
            loop = asyncio.get_running_loop()
            start = loop.time() + i * period / users
            n = 0
            while (when := start + n * period) < start + seconds:
                await asyncio.sleep(max(0.0, when - loop.time()))
                ack = await clients[i].call(
                    "chat:message", {"roomId": room_of[i], "text": f"m{n}"}, namespace=NAMESPACE
                )
                if ack.get("status") == "ok":
                    counted.accepted.append(time.time())
                else:
                    counted.errors += 1
                n += 1

        await asyncio.gather(*(sender(i) for i in range(users)))
        counted.ended = time.time()
        await asyncio.sleep(1)  # the last deliveries arrive
    finally:
        for sio in clients:
            await sio.disconnect()
    return counted
