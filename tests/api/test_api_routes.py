"""Every route of the OpenAPI document, on both deployments; the document itself checked by
a real validator; events and notifications reach sockets; the API is off without keys."""

from __future__ import annotations

import re

import httpx
import pytest
from openapi_spec_validator import validate

from parley_client import ParleyApi

from .conftest import KEYS, room, user

pytestmark = pytest.mark.e2e


async def test_without_keys_the_api_answers_404(single_node):
    async with httpx.AsyncClient(base_url=single_node.gateways[0].url) as http:
        for method, path in [
            ("GET", "/api/v1/openapi.json"),
            ("POST", "/api/v1/rooms/lobby/messages"),
            ("GET", "/api/v1/users/u1/presence"),
        ]:
            response = await http.request(method, path, headers={"Authorization": "Bearer x"})
            assert response.status_code == 404, (method, path)


async def test_the_openapi_document_is_valid_and_served_without_a_key(api_single):
    async with httpx.AsyncClient(base_url=api_single.gateways[0].url) as http:
        response = await http.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"].startswith("3.1")


def operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }


async def test_every_route_in_the_document_works(api_system):
    """One pass over the whole document: each operation is called for real and checked."""
    seen: set[tuple[str, str]] = set()
    templates: list[tuple[re.Pattern[str], str]] = []
    api = api_system.api("everything")
    document = await api.openapi()
    for path in document["paths"]:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", path)
        templates.append((re.compile(f"^/api/v1{pattern}$"), path))

    async def record(response: httpx.Response) -> None:
        if response.status_code < 300:
            for regex, path in templates:
                if regex.match(response.request.url.path):
                    seen.add((response.request.method, path))

    root = api_system.api("root")
    for client in (api, root):
        client._http.event_hooks["response"].append(record)

    r, member, listener = room(), user(), user()
    member_socket = await api_system.client(member)
    inbox = await api_system.notifications(member)
    watcher = await api_system.client(listener)
    assert (await watcher.call("room:join", r))["status"] == "ok"

    first = await api.publish(r, "one")
    second = await root.publish(r, "as a user", user_id=member)  # admin: on behalf
    said = await watcher.wait_for("chat:message", lambda m: m["id"] == second)
    assert said["userId"] == member
    messages, has_more = await api.history(r, limit=1)
    assert [m["id"] for m in messages] == [second] and has_more
    older, has_more = await api.history(r, before=second)
    assert [m["id"] for m in older] == [first] and not has_more

    await api.event(r, "app:score", {"home": 2})
    assert await watcher.wait_for("app:score") == {"home": 2}
    await api.notify(member, "app:invite", roomId=r)
    note = await inbox.wait_for("notification", lambda n: n["type"] == "app:invite")
    assert note["roomId"] == r and "timestamp" in note

    assert await api.join(r, member) == 1
    await member_socket.wait_for("room:history", lambda h: h["roomId"] == r)
    assert {m.user_id for m in await api.members(r)} == {member, listener}
    assert (await api.presence(member)).sockets == 1
    assert await api.leave(r, member) == 0
    assert {m.user_id for m in await api.members(r)} == {listener}
    assert await root.disconnect(member) == 1
    assert not (await api.presence(member)).online

    assert seen == operations(document)


async def test_bad_inputs_are_refused_with_their_status(api_system):
    url = api_system.gateways[0].url
    r = room()
    good = {"Authorization": f"Bearer {KEYS['everything']}"}
    cases = [  # (method, path, headers, body or raw bytes, status, error)
        ("POST", f"/rooms/{r}/messages", {}, {"text": "x"}, 401, "unauthorized"),
        ("POST", f"/rooms/{r}/messages", {"Authorization": "Bearer " + "w" * 32},
         {"text": "x"}, 401, "unauthorized"),
        ("POST", f"/rooms/{r}/messages", {"Authorization": KEYS["everything"]},
         {"text": "x"}, 401, "unauthorized"),  # not a Bearer scheme
        ("POST", f"/rooms/{r}/messages", {"Authorization": f"Bearer {KEYS['reader']}"},
         {"text": "x"}, 403, "forbidden"),
        ("GET", f"/rooms/{r}/members", {"Authorization": f"Bearer {KEYS['publisher']}"},
         None, 403, "forbidden"),
        ("PUT", f"/rooms/{r}/members/u1", {"Authorization": f"Bearer {KEYS['reader']}"},
         None, 403, "forbidden"),
        ("POST", "/users/u1/disconnect", good, None, 403, "forbidden"),
        ("POST", f"/rooms/{r}/messages", good, {"text": "x", "userId": "u1"}, 403, "forbidden"),
        ("POST", f"/rooms/{r}/events", good, {"event": "chat:message", "data": {}}, 422,
         "invalid_request"),
        ("POST", f"/rooms/{r}/events", good, {"event": "room:user-joined"}, 422,
         "invalid_request"),
        ("POST", f"/rooms/{r}/events", good, {"event": "presence:online"}, 422,
         "invalid_request"),
        ("POST", "/users/u1/notifications", good, {"type": "system", "text": "forged"}, 422,
         "invalid_request"),
        ("POST", f"/rooms/{r}/messages", good, {"text": "x", "roomId": "other"}, 422,
         "invalid_request"),
        ("POST", f"/rooms/{r}/events", good, {"event": "app:x", "extra": 1}, 422,
         "invalid_request"),
        ("POST", f"/rooms/{r}/messages", good, {"text": ""}, 422, "invalid_request"),
        ("POST", f"/rooms/{r}/messages", good, ["not", "an", "object"], 422,
         "invalid_request"),
        ("POST", f"/rooms/{r}/messages", good, b"{not json", 400, "bad_request"),
        ("POST", f"/rooms/{r}/messages", good, b"x" * 70_000, 413, "too_large"),
        ("POST", "/rooms/bad%23room/messages", good, {"text": "x"}, 400, "bad_request"),
        ("GET", f"/rooms/{'r' * 201}/members", good, None, 400, "bad_request"),
        ("POST", "/rooms/user%3Au1/messages", good, {"text": "x"}, 400, "bad_request"),
        ("GET", f"/rooms/{r}/messages?limit=0", good, None, 400, "bad_request"),
        ("GET", f"/rooms/{r}/messages?before=nope", good, None, 400, "bad_request"),
        ("GET", f"/rooms/{r}/messages?sort=desc", good, None, 400, "bad_request"),
        ("GET", "/rooms", good, None, 404, "not_found"),  # no such route
        ("PATCH", f"/rooms/{r}/messages", good, None, 405, "method_not_allowed"),
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=url + "/api/v1") as http:
        for method, path, headers, body, status, error in cases:
            kw = {"content": body} if isinstance(body, bytes) else {"json": body}
            response = await http.request(method, path, headers=headers, **kw)
            assert response.status_code == status, (method, path, response.text)
            answer = response.json()
            assert answer["error"] == error and isinstance(answer["message"], str), answer
            assert set(answer) == {"error", "message"}
            if status == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
            for secret in KEYS.values():  # no answer echoes a key
                assert secret not in response.text


async def test_the_rate_limit_of_a_key_answers_429(tmp_path):
    from tests.support.procs import Service

    key = "limited-" + "k" * 24
    env = {
        "PARLEY_MODE": "single",
        "PARLEY_SQLITE_PATH": str(tmp_path / "p.db"),
        "PARLEY_API_KEYS": f"slow:{key}:read",
        "PARLEY_API_RATE_LIMIT": "3/60",
    }
    gateway = Service("gateway", "api-limited", env).start()
    try:
        gateway.wait_ready()
        async with ParleyApi(gateway.url, key) as api:
            for _ in range(3):
                await api.presence("u1")
            async with httpx.AsyncClient(base_url=gateway.url) as http:
                response = await http.get(
                    "/api/v1/users/u1/presence", headers={"Authorization": f"Bearer {key}"}
                )
        assert response.status_code == 429
        assert response.json()["error"] == "rate_limited"
        assert int(response.headers["retry-after"]) >= 1
    finally:
        gateway.stop()


async def test_a_join_of_an_offline_user_is_stored_and_honoured_by_their_next_sockets(api_system):
    """PUT members of a user with no socket stores the membership: their next socket (on
    another pod on the cluster) is joined on connect and may post; DELETE ends it."""
    r, u = room(), user()
    last = len(api_system.gateways) - 1
    mover, reader = api_system.api("mover"), api_system.api("reader")
    earlier = await api_system.api("publisher").publish(r, "before they came")
    assert await mover.join(r, u) == 0  # offline: stored, no socket in the room
    assert [(m.user_id, m.online, m.sockets) for m in await reader.members(r)] == [(u, False, 0)]
    client = await api_system.client(u, gateway=last)
    history = await client.wait_for("room:history", lambda h: h["roomId"] == r)
    assert earlier in [m["id"] for m in history["messages"]]
    ack = await client.call("chat:message", {"roomId": r, "text": "here now"})
    assert ack["status"] == "ok"
    assert [(m.user_id, m.online, m.sockets) for m in await reader.members(r)] == [(u, True, 1)]
    assert await mover.leave(r, u) == 0
    assert await reader.members(r) == []
    again = await api_system.client(u, gateway=0)  # a later socket: not joined any more
    refused = await again.call("chat:message", {"roomId": r, "text": "gone"})
    assert refused["status"] == "error" and refused["code"] == "forbidden"
    refused = await client.call("chat:message", {"roomId": r, "text": "gone"})
    assert refused["status"] == "error" and refused["code"] == "forbidden"


async def test_a_room_leave_ends_a_stored_membership(api_system):
    r, u = room(), user()
    mover = api_system.api("mover")
    assert await mover.join(r, u) == 0
    client = await api_system.client(u)
    await client.wait_for("room:history", lambda h: h["roomId"] == r)
    assert (await client.call("room:leave", r))["status"] == "ok"
    assert await api_system.api("reader").members(r) == []
    later = await api_system.client(u)
    refused = await later.call("chat:message", {"roomId": r, "text": "no"})
    assert refused["status"] == "error" and refused["code"] == "forbidden"
