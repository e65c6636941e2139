"""Fan-out proportional to interest: with N rooms spread over 2 gateways, each pod receives from
Redis only the messages of the rooms it has members in.

Room ``r``'s members (``--members`` sockets of their own users) are all on pod ``r % 2``. Every
room also gets one sender socket on EACH pod, of a member's user (membership is per user, so it
may send without joining; its pod therefore has no interest in the room). Each sender sends
``messages`` messages into its room. A pod then publishes all N rooms' messages of its own
senders, and with interest-based fan-out receives only the other pod's messages for ITS N/2
rooms: ``parley_gateway_fanout_received_total{scope="room"}`` rises by N/2 × messages per pod
(a pod subscribed to every room would count N × messages). The counters are read from each
pod's ``/metrics`` before and after; clients count their deliveries too.

    python -m bench.interest --urls http://127.0.0.1:A,http://127.0.0.1:B   (cluster gateways
    sharing one Redis prefix, started with bench.common.SECRET and chat:message limits raised)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from typing import Any

import httpx
import socketio

from .common import log, token

NS = "/chat"
COUNTERS = {
    "received_room": ("parley_gateway_fanout_received_total", 'scope="room"'),
    "received_pod": ("parley_gateway_fanout_received_total", 'scope="pod"'),
    "published_room": ("parley_gateway_fanout_published_total", 'scope="room"'),
    "published_pod": ("parley_gateway_fanout_published_total", 'scope="pod"'),
    "deliveries_chat": ("parley_gateway_deliveries_total", 'nsp="/chat"'),
}


def counters(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    out: dict[str, float] = {}
    for key, (name, label) in COUNTERS.items():
        match = re.search(rf"^{name}\{{[^}}]*{re.escape(label)}[^}}]*\}} (\S+)$", text, re.M)
        out[key] = float(match.group(1)) if match else float("nan")
    return out


async def client(url: str, user: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        url, namespaces=[NS], transports=["websocket"], auth={"token": token(user)}, wait_timeout=30
    )
    return sio


async def run(urls: list[str], rooms: int = 8, members: int = 10, messages: int = 40):
    assert len(urls) == 2, "two gateways"
    tag = uuid.uuid4().hex[:8]
    names = [f"interest-{tag}-{r}" for r in range(rooms)]
    received = [0] * rooms
    sockets: list[socketio.AsyncClient] = []
    try:
        # members: room r's on pod r % 2, each joins (the ack means subscribed and recorded)
        for r, room in enumerate(names):
            wave = await asyncio.gather(
                *(client(urls[r % 2], f"{room}-m{j}") for j in range(members))
            )
            for sio in wave:

                def on_message(m: Any, r: int = r) -> None:
                    if isinstance(m, dict) and m.get("roomId") == names[r]:
                        received[r] += 1

                sio.on("chat:message", on_message, namespace=NS)
            sockets += wave
            acks = await asyncio.gather(
                *(s.call("room:join", room, namespace=NS, timeout=30) for s in wave)
            )
            bad = [a for a in acks if not (isinstance(a, dict) and a.get("status") == "ok")]
            if bad:
                raise RuntimeError(f"room:join refused: {bad[:2]}")
        # senders: one per room on each pod, a member's user, not joined
        senders = []
        for r, room in enumerate(names):
            for pod in (0, 1):
                s = await client(urls[pod], f"{room}-m0")
                sockets.append(s)
                senders.append((s, r, pod))
        before = [await asyncio.to_thread(counters, u) for u in urls]
        errors = 0

        async def send(s: socketio.AsyncClient, r: int, pod: int) -> None:
            nonlocal errors
            for i in range(messages):
                ack = await s.call(
                    "chat:message",
                    {"roomId": names[r], "text": f"interest {r} from pod {pod} #{i}"},
                    namespace=NS,
                    timeout=30,
                )
                if not (isinstance(ack, dict) and ack.get("status") == "ok"):
                    errors += 1

        started = time.monotonic()
        await asyncio.gather(*(send(s, r, pod) for s, r, pod in senders))
        send_s = time.monotonic() - started
        expected_per_room = 2 * messages * members
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and sum(received) < rooms * expected_per_room:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # counters of anything still in flight
        after = [await asyncio.to_thread(counters, u) for u in urls]
    finally:
        await asyncio.gather(*(s.disconnect() for s in sockets), return_exceptions=True)
    pods = []
    for p, url in enumerate(urls):
        delta = {k: after[p][k] - before[p][k] for k in COUNTERS}
        own = [r for r in range(rooms) if r % 2 == p]
        pods.append(
            {
                "url": url,
                "rooms_with_members": len(own),
                "counters_delta": delta,
                "expected_received_room": len(own) * messages,
                "if_subscribed_to_every_room": rooms * messages,
                # every message counted once, none of the other rooms' (allowing nothing extra)
                "only_its_rooms": delta["received_room"] == len(own) * messages,
                "received_share_of_other_pods_messages": round(
                    delta["received_room"] / max(1, rooms * messages), 3
                ),
            }
        )
        log(
            f"  pod {p + 1}: members in {len(own)} of {rooms} rooms; received "
            f"{delta['received_room']:.0f} room messages (expected {len(own) * messages}, "
            f"{rooms * messages} if it took every room), published {delta['published_room']:.0f}"
        )
    result = {
        "rooms": rooms,
        "members_per_room": members,
        "messages_per_sender": messages,
        "senders_per_room": 2,
        "sent": len(names) * 2 * messages,
        "send_errors": errors,
        "send_seconds": round(send_s, 2),
        "deliveries": sum(received),
        "deliveries_expected": rooms * expected_per_room,
        "pods": pods,
    }
    log(f"  deliveries {sum(received)}/{rooms * expected_per_room}, send errors {errors}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--urls", required=True, help="two gateway URLs, comma-separated")
    parser.add_argument("--rooms", type=int, default=8)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--messages", type=int, default=40)
    args = parser.parse_args()
    result = asyncio.run(
        run(args.urls.split(","), rooms=args.rooms, members=args.members, messages=args.messages)
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
