"""One test per row of PROTOCOL.md's /chat table (and its rules), on both deployments."""

from __future__ import annotations

import asyncio
import uuid

import pytest

pytestmark = pytest.mark.e2e

FORBIDDEN = {"status": "error", "error": "Forbidden", "code": "forbidden"}
INVALID = {"status": "error", "error": "Invalid message", "code": "invalid_message"}
RATE_LIMITED = {"status": "error", "error": "Rate limit exceeded", "code": "rate_limited"}


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def last_gateway(system) -> int:
    return len(system.gateways) - 1


async def eventually(check, timeout: float = 20.0, interval: float = 0.3):
    """Retry an async check until it returns truthy (storage is asynchronous in cluster mode)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(interval)


async def test_join_leave_and_their_announcements(system):
    room = unique("room")
    a = await system.client(unique("ann"))
    b = await system.client(unique("ben"), gateway=last_gateway(system))
    assert await a.call("room:join", room) == {"status": "ok", "roomId": room}
    await b.call("room:join", {"roomId": room})
    joined = await a.wait_for("room:user-joined", lambda d: d["roomId"] == room)
    assert set(joined) == {"userId", "username", "roomId"}
    assert await b.call("room:leave", room) == {"status": "ok", "roomId": room}
    left = await a.wait_for("room:user-left", lambda d: d["roomId"] == room)
    assert left["userId"] == joined["userId"]
    assert (await b.call("chat:message", {"roomId": room, "text": "gone"})) == FORBIDDEN


async def test_history_limit_and_personal_and_dm_rooms(system):
    me, other = unique("ida"), unique("jon")
    c = await system.client(me)
    assert await c.call("room:join", f"user:{me}") == {"status": "ok", "roomId": f"user:{me}"}
    assert await c.call("room:join", f"user:{other}") == FORBIDDEN
    dm = "dm:" + ":".join(sorted([me, other]))
    assert (await c.call("room:join", dm))["status"] == "ok"
    assert await c.call("room:join", "dm:" + ":".join(sorted([other, unique("x")]))) == FORBIDDEN
    unsorted = "dm:" + ":".join(sorted([me, other], reverse=True))
    assert await c.call("room:join", unsorted) == FORBIDDEN  # dm ids are sorted
    room = unique("hist")
    await c.call("room:join", room)
    ids = [
        (await c.call("chat:message", {"roomId": room, "text": f"h{i}"}))["messageId"]
        for i in range(4)
    ]
    d = await system.client(unique("kim"), gateway=last_gateway(system))

    async def three_newest():
        d.events.clear()
        await d.call("room:join", {"roomId": room, "limit": 3})
        h = await d.wait_for("room:history", lambda h: h["roomId"] == room)
        return h if [m["id"] for m in h["messages"]] == ids[1:] else None

    assert await eventually(three_newest), "room:history with limit 3 was not the 3 newest"


async def test_membership_is_per_user_across_devices_and_pods(system):
    user, room = unique("lea"), unique("devices")
    phone = await system.client(user, gateway=0)
    laptop = await system.client(user, gateway=last_gateway(system))
    assert await laptop.call("chat:message", {"roomId": room, "text": "x"}) == FORBIDDEN
    await phone.call("room:join", room)
    ack = await laptop.call("chat:message", {"roomId": room, "text": "from the laptop"})
    assert ack["status"] == "ok"
    got = await phone.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])
    assert got["userId"] == user
    assert (await laptop.call("chat:typing", {"roomId": room, "isTyping": True}))["status"] == "ok"
    await phone.close()
    await asyncio.sleep(0.3)
    assert await laptop.call("chat:message", {"roomId": room, "text": "y"}) == FORBIDDEN


async def test_non_members_cannot_type_read_or_page(system):
    room = unique("closed")
    owner = await system.client(unique("max"))
    await owner.call("room:join", room)
    mid = (await owner.call("chat:message", {"roomId": room, "text": "secret"}))["messageId"]
    outsider = await system.client(unique("nia"), gateway=last_gateway(system))
    assert await outsider.call("chat:typing", {"roomId": room, "isTyping": True}) == FORBIDDEN
    assert await outsider.call("chat:read", {"roomId": room, "messageId": mid}) == FORBIDDEN
    assert await outsider.call("chat:history", {"roomId": room}) == FORBIDDEN
    await asyncio.sleep(0.3)
    assert owner.received("chat:typing") == [] and owner.received("chat:read") == []


async def test_typing_goes_to_others_only_and_is_throttled(system):
    room = unique("typing")
    a = await system.client(unique("oli"))
    b = await system.client(unique("pam"), gateway=last_gateway(system))
    for c in (a, b):
        await c.call("room:join", room)
    acks = [await a.call("chat:typing", {"roomId": room, "isTyping": True}) for _ in range(4)]
    assert acks[:2] == [{"status": "ok"}] * 2 and acks[2:] == [RATE_LIMITED] * 2
    got = await b.wait_for("chat:typing", lambda d: d["roomId"] == room)
    assert got["isTyping"] is True and set(got) == {"userId", "username", "roomId", "isTyping"}
    await asyncio.sleep(0.5)
    assert len(b.received("chat:typing")) == 2
    assert a.received("chat:typing") == []
    assert await a.call("chat:typing", {"roomId": room, "isTyping": "yes"}) == INVALID


async def test_read_receipts_are_relayed_and_persisted_in_read_by(system):
    room = unique("reads")
    a_user, b_user = unique("quinn"), unique("rae")
    a = await system.client(a_user)
    b = await system.client(b_user, gateway=last_gateway(system))
    for c in (a, b):
        await c.call("room:join", room)
    mid = (await a.call("chat:message", {"roomId": room, "text": "read me"}))["messageId"]
    assert await b.call("chat:read", {"roomId": room, "messageId": mid}) == {"status": "ok"}
    relayed = await a.wait_for("chat:read", lambda d: d["messageId"] == mid)
    assert relayed == {"userId": b_user, "messageId": mid, "roomId": room}
    assert b.received("chat:read") == []
    assert await b.call("chat:read", {"roomId": room, "messageId": "nope"}) == INVALID
    unknown = "0" * 26  # a well-formed id that no message has
    assert await b.call("chat:read", {"roomId": room, "messageId": unknown}) == {
        "status": "error",
        "error": "Not found",
        "code": "not_found",
    }

    async def read_by():
        page = await a.call("chat:history", {"roomId": room})
        found = [m for m in page["messages"] if m["id"] == mid]
        return found and found[0]["readBy"] == [a_user, b_user]

    assert await eventually(read_by), "readBy did not gain the reader"


async def test_rate_limit_is_per_user_across_devices_and_pods(system):
    user, room = unique("sam"), unique("limits")
    first = await system.client(user, gateway=0)
    second = await system.client(user, gateway=last_gateway(system))
    for c in (first, second):
        await c.call("room:join", room)
    acks = []
    for i in range(12):
        c = first if i % 2 == 0 else second
        acks.append(await c.call("chat:message", {"roomId": room, "text": f"n{i}"}))
    assert [a["status"] for a in acks[:10]] == ["ok"] * 10
    assert acks[10:] == [RATE_LIMITED] * 2
    other = await system.client(unique("tia"))
    await other.call("room:join", room)
    assert (await other.call("chat:message", {"roomId": room, "text": "me"}))["status"] == "ok"


async def test_client_msg_id_retry_returns_same_id_and_is_not_delivered_twice(system):
    room = unique("retry")
    a = await system.client(unique("uma"))
    b = await system.client(unique("vic"), gateway=last_gateway(system))
    for c in (a, b):
        await c.call("room:join", room)
    payload = {"roomId": room, "text": "once", "clientMsgId": "c-1"}
    first, again = await asyncio.gather(
        a.call("chat:message", payload), a.call("chat:message", payload)
    )
    third = await a.call("chat:message", payload)
    assert first["status"] == "ok" and first == again == third
    await b.wait_for("chat:message", lambda m: m["id"] == first["messageId"])
    await asyncio.sleep(0.5)
    assert len(b.received("chat:message", lambda m: m["roomId"] == room)) == 1
    other = await a.call("chat:message", {**payload, "clientMsgId": "c-2"})
    assert other["messageId"] != first["messageId"]


async def test_reply_to_and_identity_from_token(system):
    user, room = unique("wes"), unique("replies")
    c = await system.client(user)
    await c.call("room:join", room)
    parent = (await c.call("chat:message", {"roomId": room, "text": "q"}))["messageId"]
    ack = await c.call(
        "chat:message",
        {
            "roomId": room,
            "text": "a",
            "replyTo": parent,
            "userId": "mallory",
            "username": "Mallory",
        },
    )
    got = await c.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])
    assert got["replyTo"] == parent and got["userId"] == user and got["username"] == user


async def test_batching_only_for_clients_that_opted_in(system):
    from tests.support.client import ChatClient

    room = unique("busy")
    plain = await system.client(unique("xia"))
    batched = ChatClient(system.gateways[0].url, system.token(unique("yan")))
    batched.auth_extra = {"batch": True}
    system.clients.append(batched)
    await batched.connect()
    senders = [
        await system.client(unique("zoe"), gateway=i % len(system.gateways)) for i in range(4)
    ]
    for c in (plain, batched, *senders):
        await c.call("room:join", room)
    acks = await asyncio.gather(
        *(
            s.call("chat:message", {"roomId": room, "text": f"{i}"})
            for s in senders
            for i in range(8)
        )
    )
    ids = {a["messageId"] for a in acks}
    assert len(ids) == 32

    def seen_by(client):
        singles = [m["id"] for m in client.received("chat:message", lambda m: m["roomId"] == room)]
        batches = client.received("chat:batch")
        return singles + [m["id"] for b in batches for m in b], batches

    async def everyone_has_all():
        return all(set(seen_by(c)[0]) == ids for c in (plain, batched))

    assert await eventually(everyone_has_all, timeout=10)
    plain_ids, plain_batches = seen_by(plain)
    batch_ids, batches = seen_by(batched)
    assert plain_batches == [] and sorted(plain_ids) == sorted(ids)
    assert sorted(batch_ids) == sorted(ids)  # each exactly once
    assert batches and all(len(b) >= 2 for b in batches)
