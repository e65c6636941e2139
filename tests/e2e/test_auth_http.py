"""End-to-end: ``POST /auth/register`` and ``/auth/login`` on the running gateways.

Each test sends its own ``X-Forwarded-For`` (uvicorn trusts it from loopback, as from nginx),
so the per-IP login limit of one test never spills into another.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.client import ChatClient

pytestmark = pytest.mark.e2e


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:10]}"


def http(url: str) -> httpx.AsyncClient:
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    return httpx.AsyncClient(base_url=url, timeout=30, headers={"X-Forwarded-For": ip})


def creds(username: str, password: str = "correct horse battery") -> dict[str, str]:
    return {"username": username, "password": password}


async def test_register_login_and_the_token_opens_chat(system):
    name = unique("Alice")
    async with http(system.gateways[0].url) as api:
        r = await api.post("/auth/register", json=creds(name))
        assert r.status_code == 201, r.text
        user_id = r.json()["userId"]
        assert r.json() == {"userId": user_id, "username": name}
        r = await api.post("/auth/login", json=creds(name.lower()))
        assert r.status_code == 200, r.text
        login = r.json()
    assert login["userId"] == user_id and login["username"] == name
    assert login["expiresAt"].endswith("Z") and len(login["expiresAt"]) == 24

    chat = ChatClient(system.gateways[-1].url, login["token"])
    system.clients.append(chat)
    await chat.connect()
    room = unique("auth-room")
    assert (await chat.call("room:join", room))["status"] == "ok"
    ack = await chat.call("chat:message", {"roomId": room, "text": "registered and in"})
    assert ack["status"] == "ok"
    got = await chat.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])
    assert (got["userId"], got["username"]) == (user_id, name)  # identity from the token


async def test_duplicate_username_is_409(system):
    name = unique("Bob")
    async with http(system.gateways[0].url) as api:
        assert (await api.post("/auth/register", json=creds(name))).status_code == 201
        r = await api.post("/auth/register", json=creds(name.upper(), "another password"))
    assert r.status_code == 409
    assert r.json() == {"error": "Username already taken", "code": "username_taken"}


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"not json at all", "invalid_request"),
        (b"[1, 2]", "invalid_request"),
        (b'{"username": "someone"}', "invalid_request"),
        (b'{"username": 42, "password": "password1"}', "invalid_request"),
        (b'{"username": "x", "password": "password1"}', "invalid_username"),
        (b'{"username": "has space", "password": "password1"}', "invalid_username"),
        (b'{"username": "shortpw_user", "password": "1234567"}', "invalid_password"),
    ],
)
async def test_bad_bodies_are_400_never_500(system, content, code):
    async with http(system.gateways[0].url) as api:
        r = await api.post(
            "/auth/register", content=content, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400, r.text
        assert r.json()["code"] == code and isinstance(r.json()["error"], str)
        r = await api.post("/auth/login", content=b"{broken")
        assert r.status_code == 400 and r.json()["code"] == "invalid_request"


async def test_wrong_password_and_unknown_user_are_the_same_401(system):
    name = unique("carol")
    async with http(system.gateways[0].url) as api:
        await api.post("/auth/register", json=creds(name))
        wrong = await api.post("/auth/login", json=creds(name, "incorrect horse"))
        unknown = await api.post("/auth/login", json=creds(unique("ghost")))
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert r.json() == {"error": "Invalid username or password", "code": "invalid_credentials"}


async def test_guesses_are_limited_per_address_on_every_gateway_not_the_owner(system):
    name = unique("dave")
    async with http(system.gateways[0].url) as api:
        assert (await api.post("/auth/register", json=creds(name))).status_code == 201
    guesser = {"X-Forwarded-For": f"10.250.{uuid.uuid4().int % 250}.7"}  # via a trusted proxy
    statuses = []
    for attempt in range(6):  # alternating gateways: the failure count is shared
        url = system.gateways[attempt % len(system.gateways)].url
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=guesser) as api:
            r = await api.post("/auth/login", json=creds(name, "wrong password!"))
            statuses.append(r.status_code)
    assert statuses == [401] * 5 + [429], statuses
    assert r.json() == {"error": "Rate limit exceeded", "code": "rate_limited"}
    assert r.headers["retry-after"] == "60"
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=guesser) as api:
        blocked = await api.post("/auth/login", json=creds(name))  # even the right password
    assert blocked.status_code == 429
    async with http(system.gateways[-1].url) as owner:  # the owner, from elsewhere
        assert (await owner.post("/auth/login", json=creds(name))).status_code == 200


async def test_register_on_gateway_a_login_on_gateway_b(cluster):
    name = unique("erin")
    a, b = cluster.gateways[0].url, cluster.gateways[1].url
    async with http(a) as api:
        r = await api.post("/auth/register", json=creds(name))
        assert r.status_code == 201
        user_id = r.json()["userId"]
    async with http(b) as api:
        r = await api.post("/auth/login", json=creds(name))
        assert r.status_code == 200, r.text
        assert r.json()["userId"] == user_id
        assert (await api.post("/auth/register", json=creds(name))).status_code == 409
    chat = ChatClient(a, r.json()["token"])  # a token from B opens /chat on A
    try:
        await chat.connect()
        online = await chat.wait_for("presence:list")
        assert any(u["userId"] == user_id and u["username"] == name for u in online)
    finally:
        await chat.close()
