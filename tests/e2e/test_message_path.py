"""End-to-end: the message path through the running services, on both deployments."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.storage.cassandra_io import connect, execute
from services.storage.messages_cassandra import bucket_of
from tests.support.client import ChatClient

pytestmark = pytest.mark.e2e


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def read_row_from_cassandra(settings, room: str, message_id: str, timeout: float = 30):
    cluster, session = await connect(settings, settings.cassandra_keyspace)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            rows = list(
                await execute(
                    session,
                    "SELECT message_id, user_id, username, body FROM messages "
                    "WHERE room_id=%s AND bucket=%s AND message_id=%s",
                    (room, bucket_of(message_id), message_id),
                )
            )
            if rows:
                return rows
            await asyncio.sleep(0.2)
        return []
    finally:
        cluster.shutdown()


async def test_message_crosses_gateways_is_stored_and_in_later_history(system):
    room = unique("lobby")
    last = len(system.gateways) - 1
    alice_user = unique("alice")
    alice = await system.client(alice_user, gateway=0)
    bob = await system.client(unique("bob"), gateway=last)
    assert (await alice.call("room:join", room))["status"] == "ok"
    assert (await bob.call("room:join", {"roomId": room}))["status"] == "ok"
    await alice.wait_for("room:user-joined", lambda d: d["roomId"] == room)

    ack = await alice.call(
        "chat:message", {"roomId": room, "text": "  hello from A  ", "userId": "mallory"}
    )
    assert ack["status"] == "ok" and isinstance(ack["messageId"], str)
    got = await bob.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])
    assert got["text"] == "hello from A" and got["roomId"] == room
    assert got["userId"] == alice_user and got["readBy"] == [got["userId"]]
    assert got["timestamp"].endswith("Z") and len(got["timestamp"]) == 24
    await alice.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])  # sender too

    if system.settings.mode == "cluster":
        rows = await read_row_from_cassandra(system.settings, room, ack["messageId"])
        assert [(r[0], r[3]) for r in rows] == [(ack["messageId"], "hello from A")]

    carol = await system.client(unique("carol"), gateway=last)
    await carol.call("room:join", room)
    history = await carol.wait_for("room:history", lambda h: h["roomId"] == room)
    assert [m["id"] for m in history["messages"]] == [ack["messageId"]]
    assert history["messages"][0]["username"] == got["username"]


async def test_resync_with_since_returns_exactly_the_missed(system):
    room = unique("resync")
    a = await system.client(unique("dana"), gateway=0)
    await a.call("room:join", room)
    ids = []
    for i in range(5):
        ack = await a.call("chat:message", {"roomId": room, "text": f"m{i}"})
        ids.append(ack["messageId"])
    assert ids == sorted(ids)
    b = await system.client(unique("erin"), gateway=len(system.gateways) - 1)

    async def resync():
        await b.call("room:join", {"roomId": room, "since": ids[1]})
        return await b.wait_for("room:history", lambda h: h["roomId"] == room and "hasMore" in h)

    deadline = asyncio.get_running_loop().time() + 30
    while True:  # storage is asynchronous in cluster mode: poll until the worker caught up
        b.events.clear()
        history = await resync()
        if len(history["messages"]) == 3 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.3)
    assert [m["id"] for m in history["messages"]] == ids[2:]
    assert history["hasMore"] is False
    page = await b.call("chat:history", {"roomId": room, "before": ids[3], "limit": 2})
    assert [m["id"] for m in page["messages"]] == ids[1:3] and page["hasMore"] is True


async def test_refusals(system):
    url = system.gateways[0].url
    no_token = ChatClient(url, None)
    assert (await no_token.try_connect())["message"] == "Authentication required"
    forged = ChatClient(url, system.token("eve").rsplit(".", 1)[0] + ".AAAA")
    assert (await forged.try_connect())["message"] == "Invalid token"
    expired = ChatClient(url, system.token("eve", ttl_seconds=1, now=1_000_000))
    refusal = await expired.try_connect()
    assert refusal["message"] == "Invalid token" and refusal["data"]["code"] == "token_expired"

    user = unique("frank")
    c = await system.client(user)
    assert (await c.call("chat:message", {"roomId": unique("notjoined"), "text": "x"}))[
        "code"
    ] == "forbidden"
    assert (await c.call("room:join", "user:someone-else"))["code"] == "forbidden"
    assert (await c.call("room:join", "dm:aaa:zzz"))["code"] == "forbidden"
    for bad in (None, 42, "text", [], {"roomId": "r"}, {"roomId": "r", "text": ""}):
        ack = await c.call("chat:message", bad)
        assert ack == {"status": "error", "error": "Invalid message", "code": "invalid_message"}, (
            bad
        )
