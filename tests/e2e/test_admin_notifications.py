"""End-to-end: ``/notifications`` and ``/admin`` across gateways, on both deployments."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.nsclient import NamespaceClient

pytestmark = pytest.mark.e2e

STATS_SECONDS = 2.0  # PARLEY_ADMIN_STATS_SECONDS of the test deployments (the default)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def last(system) -> int:
    return len(system.gateways) - 1


async def connect(system, user: str, namespace: str, gateway: int = 0, **token) -> NamespaceClient:
    auth = {"token": system.token(user, **token)}
    c = NamespaceClient(system.gateways[gateway].url, namespace, auth)
    system.clients.append(c)
    return await c.connect()


async def admin(system, gateway: int = 0) -> NamespaceClient:
    return await connect(system, unique("root"), "/admin", gateway, role="admin")


async def eventually(predicate, timeout: float = 10, every: float = 0.1) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(every)


def notified(kind: str, **fields):
    return lambda n: n["type"] == kind and all(n.get(k) == v for k, v in fields.items())


# --- /admin handshake and payloads ----------------------------------------------------------


async def test_admin_needs_an_admin_token(system):
    url = system.gateways[0].url
    anonymous = NamespaceClient(url, "/admin", None)
    assert (await anonymous.try_connect())["message"] == "Authentication required"
    forged = NamespaceClient(url, "/admin", {"token": system.token("eve")[:-4] + "AAAA"})
    assert (await forged.try_connect())["message"] == "Invalid token"
    user = NamespaceClient(url, "/admin", {"token": system.token(unique("eve"))})
    refusal = await user.try_connect()
    assert refusal["message"] == "Forbidden" and refusal["data"]["code"] == "forbidden"
    root = await admin(system)
    assert root.sio.connected


async def test_admin_events_answer_garbage_with_error_acks(system):
    root = await admin(system)
    cases = {
        "admin:stats": ["x", 42, [1, 2]],
        "admin:kick": ["bob", 7, [], {}, {"userId": ""}, {"userId": None}, {"userId": "a:b"}],
        "admin:broadcast": ["hi", None, {"text": ""}, {"text": 3}, {"text": "x" * 6000}],
    }
    for event, payloads in cases.items():
        for payload in payloads + [{"deep": [[{"x": "y" * 1000}] * 50]}, True]:
            if event == "admin:stats" and isinstance(payload, dict):
                continue  # stats ignores the fields of an object
            ack = await root.call(event, payload)
            assert ack == {"status": "error", "error": "Invalid message", "code": "invalid_message"}
    assert (await root.call("admin:stats"))["status"] == "ok"  # still serving


# --- admin:stats ------------------------------------------------------------------------------


async def settled_stats(root: NamespaceClient) -> dict:
    """Stats once every pod has reported after the previous test's clients left."""
    previous = await root.call("admin:stats")
    for _ in range(6):
        await asyncio.sleep(STATS_SECONDS + 0.3)
        current = await root.call("admin:stats")
        if current == previous:
            return current
        previous = current
    return previous


async def test_stats_add_up_every_gateway(system):
    root = await admin(system, gateway=last(system))
    base = await settled_stats(root)
    assert base["status"] == "ok" and base["gateways"] == len(system.gateways)

    room = unique("stats-room")
    alice, bob = unique("alice"), unique("bob")
    a = await system.client(alice, gateway=0)
    b = await system.client(bob, gateway=last(system))
    await connect(system, alice, "/notifications", gateway=last(system))
    for c in (a, b):  # one room with members on both gateways counts once
        assert (await c.call("room:join", room))["status"] == "ok"

    def grew(stats: dict) -> bool:
        return (
            stats["connections"] - base["connections"] == 3
            and stats["users"] - base["users"] == 2
            and stats["rooms"] - base["rooms"] == 1
        )

    stats = base
    deadline = asyncio.get_running_loop().time() + 3 * STATS_SECONDS + 5
    while not grew(stats) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.3)
        stats = await root.call("admin:stats")
    assert grew(stats), (base, stats)
    assert stats["gateways"] == len(system.gateways)
    ns = stats["namespaces"]
    assert ns["/chat"] - base["namespaces"].get("/chat", 0) == 2
    assert ns["/notifications"] - base["namespaces"].get("/notifications", 0) == 1


# --- admin:kick -----------------------------------------------------------------------------


async def test_kick_disconnects_every_socket_of_the_user_everywhere(system):
    victim, bystander = unique("victim"), unique("bystander")
    chats = [await system.client(victim, gateway=g) for g in (0, last(system))]
    notes = [await connect(system, victim, "/notifications", g) for g in (0, last(system))]
    other = await system.client(bystander, gateway=last(system))
    other_notes = await connect(system, bystander, "/notifications", gateway=0)
    root = await admin(system, gateway=0)

    ack = await root.call("admin:kick", {"userId": victim})
    assert ack["status"] == "ok" and ack["userId"] == victim
    assert ack["gateways"] >= len(system.gateways)  # every subscribed pod
    for n in notes:
        await n.wait_disconnected()
    await eventually(lambda: not any(c.sio.connected for c in chats))
    await other.wait_for("presence:offline", lambda u: u["userId"] == victim)
    assert other.sio.connected and other_notes.sio.connected and root.sio.connected

    again = await system.client(victim, gateway=0)  # a kick is not a ban
    assert again.sio.connected
    unknown = await root.call("admin:kick", {"userId": unique("nobody")})
    assert unknown["status"] == "ok"


# --- admin:broadcast ------------------------------------------------------------------------


async def test_broadcast_reaches_notifications_on_every_gateway(system):
    listeners = [
        await connect(system, unique("listener"), "/notifications", g)
        for g in range(len(system.gateways))
    ]
    root = await admin(system, gateway=last(system))
    text = unique("maintenance at five")
    assert await root.call("admin:broadcast", {"text": f"  {text} "}) == {"status": "ok"}
    for n in listeners:
        got = await n.wait_for("notification", notified("system", text=text))
        assert got["timestamp"].endswith("Z")


# --- mentions and DMs -----------------------------------------------------------------------


async def test_a_mention_notifies_the_named_user_on_another_gateway(system):
    room = unique("mentions")
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    bob_notes = await connect(system, bob, "/notifications", gateway=last(system))
    alice_notes = await connect(system, alice, "/notifications", gateway=0)
    a = await system.client(alice, gateway=0)
    c = await system.client(carol, gateway=0)
    for chat in (a, c):
        await chat.call("room:join", room)

    ack = await a.call("chat:message", {"roomId": room, "text": f"hey @{bob.upper()} and @{alice}"})
    assert ack["status"] == "ok"
    got = await bob_notes.wait_for("notification", notified("mention", messageId=ack["messageId"]))
    assert got["roomId"] == room and got["from"] == {"userId": alice, "username": alice}
    assert got["text"] == f"hey @{bob.upper()} and @{alice}"

    # carol's mention of alice arrives after the first message's would have: alice was
    # not notified of her own mention
    marker = await c.call("chat:message", {"roomId": room, "text": f"@{alice} ping"})
    await alice_notes.wait_for("notification", notified("mention", messageId=marker["messageId"]))
    assert (
        alice_notes.received("notification", notified("mention", messageId=ack["messageId"])) == []
    )


async def test_dm_notifies_only_while_the_recipient_is_not_in_the_room(system):
    alice, bob = unique("alice"), unique("bob")
    dm = "dm:" + ":".join(sorted((alice, bob)))
    lobby = unique("lobby")
    bob_notes = await connect(system, bob, "/notifications", gateway=last(system))
    a = await system.client(alice, gateway=0)
    assert (await a.call("room:join", dm))["status"] == "ok"
    await a.call("room:join", lobby)

    first = await a.call("chat:message", {"roomId": dm, "text": "psst"})
    got = await bob_notes.wait_for("notification", notified("dm", messageId=first["messageId"]))
    assert got["roomId"] == dm and got["from"]["userId"] == alice and got["text"] == "psst"

    b = await system.client(bob, gateway=last(system))
    assert (await b.call("room:join", dm))["status"] == "ok"
    second = await a.call("chat:message", {"roomId": dm, "text": f"you are here @{bob}"})
    marker = await a.call("chat:message", {"roomId": lobby, "text": f"@{bob} marker"})
    await bob_notes.wait_for("notification", notified("mention", messageId=marker["messageId"]))
    assert bob_notes.received("notification", lambda n: n["messageId"] == second["messageId"]) == []

    assert (await b.call("room:leave", dm))["status"] == "ok"
    third = await a.call("chat:message", {"roomId": dm, "text": "gone again?"})
    await bob_notes.wait_for("notification", notified("dm", messageId=third["messageId"]))


async def test_notifications_handshake_needs_a_token(system):
    url = system.gateways[0].url
    anonymous = NamespaceClient(url, "/notifications", None)
    assert (await anonymous.try_connect())["message"] == "Authentication required"
    expired = NamespaceClient(
        url, "/notifications", {"token": system.token("eve", ttl_seconds=1, now=1_000_000)}
    )
    refusal = await expired.try_connect()
    assert refusal["message"] == "Invalid token" and refusal["data"]["code"] == "token_expired"


async def test_admin_ui_namespace_is_off_without_a_password(system):
    ui = NamespaceClient(system.gateways[0].url, "/socketio-admin", {"username": "admin"})
    await ui.try_connect()
