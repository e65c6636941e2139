"""A rolling restart of both gateways of the real ``make up`` stack under steady chat traffic.

Clients connect through nginx, send with ``clientMsgId`` and retry until acked ``ok``, and on
every (re)connect rejoin their room with ``since`` = the last id they saw. Then: every client
ends connected, every acked message is in history exactly once and reached every member, no
user connected all along was announced offline (read from the presence announcements on
Redis, the ground truth), and each gateway logged how long its drain took.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import socketio

pytestmark = pytest.mark.e2e

USERS = 10
ROOMS = 2
SEND_EVERY_S = 1.2  # under the 10 messages / 10 s per user limit


class Chatter:
    def __init__(self, url: str, token: str, user: str, room: str) -> None:
        self.url, self.token, self.user, self.room = url, token, user, room
        self.sio = socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.3, reconnection_delay_max=1.5
        )
        self.seen: set[str] = set()
        self.last: str | None = None
        self.acked: list[str] = []
        self.connects = 0
        self.joined = asyncio.Event()
        self.sio.on("connect", self._on_connect, namespace="/chat")
        self.sio.on("chat:message", self._on_message, namespace="/chat")
        self.sio.on("room:history", self._on_history, namespace="/chat")

    def _see(self, message: dict) -> None:
        if message.get("roomId") != self.room:
            return
        self.seen.add(message["id"])
        if self.last is None or message["id"] > self.last:
            self.last = message["id"]

    async def _on_message(self, message) -> None:
        self._see(message)

    async def _on_history(self, history) -> None:
        for message in history.get("messages", []):
            self._see(message)

    async def _on_connect(self) -> None:
        self.connects += 1
        asyncio.ensure_future(self._join())

    async def _join(self) -> None:
        request = {"roomId": self.room}
        if self.last is not None:
            request["since"] = self.last  # resync: exactly what was missed
        for _ in range(20):
            try:
                ack = await self.sio.call("room:join", request, namespace="/chat", timeout=5)
                if ack.get("status") == "ok":
                    self.joined.set()
                    return
            except Exception:
                pass
            await asyncio.sleep(0.3)

    async def start(self) -> None:
        await self.sio.connect(
            self.url,
            namespaces=["/chat"],
            auth={"token": self.token},
            transports=["websocket"],
            wait_timeout=10,
        )
        await asyncio.wait_for(self.joined.wait(), 10)

    async def send_until_acked(self, text: str, deadline: float) -> None:
        client_msg_id = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            try:
                ack = await self.sio.call(
                    "chat:message",
                    {"roomId": self.room, "text": text, "clientMsgId": client_msg_id},
                    namespace="/chat",
                    timeout=5,
                )
                if ack.get("status") == "ok":
                    self.acked.append(ack["messageId"])
                    return
            except Exception:  # not connected right now, or the ack was lost with the socket
                pass
            await asyncio.sleep(0.3)
        raise AssertionError(f"{self.user}: message {client_msg_id} never acked")

    async def history(self) -> list[str]:
        ids: list[str] = []
        before = None
        while True:
            request = {"roomId": self.room, "limit": 100}
            if before:
                request["before"] = before
            page = await self.sio.call("chat:history", request, namespace="/chat", timeout=10)
            assert page["status"] == "ok", page
            ids = [m["id"] for m in page["messages"]] + ids
            if not page["hasMore"] or not page["messages"]:
                return ids
            before = page["messages"][0]["id"]


async def test_rolling_restart_under_traffic_loses_nothing_and_flaps_no_one(make_up_stack):
    stack = make_up_stack
    tag = uuid.uuid4().hex[:6]
    rooms = [f"roll-{tag}-{n}" for n in range(ROOMS)]
    chatters = [
        Chatter(stack.url, stack.token(f"roll-{tag}-{n}"), f"roll-{tag}-{n}", rooms[n % ROOMS])
        for n in range(USERS)
    ]
    announcements: list[dict] = []
    redis = aioredis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(stack.settings.socketio_channel)

    async def listen() -> None:
        async for message in pubsub.listen():
            try:
                body = json.loads(message["data"])
            except (TypeError, ValueError):
                continue
            if isinstance(body, dict) and str(body.get("event", "")).startswith("presence:"):
                announcements.append(body)

    listener = asyncio.create_task(listen())
    try:
        for c in chatters:
            await c.start()
        await asyncio.sleep(1)  # let the online announcements of the start pass
        watched = {c.user for c in chatters}
        announcements.clear()

        loop = asyncio.get_running_loop()
        stop_at: list[float] = []

        async def traffic(c: Chatter) -> None:
            n = 0
            while not stop_at or loop.time() < stop_at[0]:
                await c.send_until_acked(f"{c.user} #{n}", loop.time() + 60)
                n += 1
                await asyncio.sleep(SEND_EVERY_S)

        senders = [asyncio.create_task(traffic(c)) for c in chatters]
        await asyncio.sleep(2)
        output = await asyncio.to_thread(stack.script, "restart", "gateway-1", "gateway-2")
        stop_at.append(loop.time() + 3)
        await asyncio.gather(*senders)

        deadline = loop.time() + 20
        while not all(c.sio.connected and c.joined.is_set() for c in chatters):
            assert loop.time() < deadline, "some clients did not come back"
            await asyncio.sleep(0.2)
        assert all(c.connects >= 2 for c in chatters), [c.connects for c in chatters]

        for c in chatters:  # a last resync, as a client does when it comes back
            c.joined.clear()
            await c._join()
        for room in rooms:
            members = [c for c in chatters if c.room == room]
            acked = [i for c in members for i in c.acked]
            assert acked, f"no traffic in {room}"
            stored = await members[0].history()
            assert len(stored) == len(set(stored)), "duplicates in history"
            missing = set(acked) - set(stored)
            assert not missing, f"{len(missing)} acked messages missing from history of {room}"
            assert len(stored) == len(acked), "history holds messages nobody got an ok for"
            for c in members:
                assert set(acked) <= c.seen, f"{c.user} missed {len(set(acked) - c.seen)}"

        def subject(announcement: dict) -> str | None:
            data = announcement.get("data")
            data = data[0] if isinstance(data, list) and data else data
            return data.get("userId") if isinstance(data, dict) else None

        flaps = [
            a
            for a in announcements
            if a.get("event") == "presence:offline" and subject(a) in watched
        ]
        assert flaps == [], f"users announced offline during the restart: {flaps[:3]}"
        assert re.search(r"stopped gateway-1 \(\d+s\)", output), output
        for name in ("gateway-1", "gateway-2"):
            log = Path(stack.log_dir, f"{name}.log").read_text(errors="replace")
            assert re.search(r"drained: \d+ transports closed; drain took [\d.]+s", log), name
    finally:
        listener.cancel()
        for c in chatters:
            await c.sio.disconnect()
        await pubsub.aclose()
        await redis.aclose()
