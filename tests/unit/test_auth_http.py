"""``/auth/register`` and ``/auth/login`` in process: memory adapters, httpx over ASGI."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from services.common.auth import verify_token
from services.common.errors import Unavailable
from services.common.settings import Settings, SettingsError
from services.gateway.auth_http import MAX_BODY_BYTES, auth_routes
from services.storage.ratelimit import MemoryRateLimiter
from services.storage.users import MemoryUserStore
from tests.support.keys import rsa_pems

FAST = {"PARLEY_PASSWORD_BCRYPT_ROUNDS": "4"}
UNAVAILABLE = {"error": "Temporarily unavailable, retry", "code": "unavailable"}


def unique(prefix: str = "user") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def make_api(env=None, users=None, limiter=None):
    settings = Settings.from_env({**FAST, **(env or {})})
    routes = auth_routes(settings, users or MemoryUserStore(), limiter or MemoryRateLimiter())
    return settings, Starlette(routes=routes)


def client(app, ip: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://parley")


@pytest.fixture
def api():
    return make_api()


async def register(http, username, password="password1"):
    return await http.post("/auth/register", json={"username": username, "password": password})


async def login(http, username, password="password1"):
    return await http.post("/auth/login", json={"username": username, "password": password})


async def test_register_then_login_gives_a_token_verify_token_accepts(api):
    settings, app = api
    async with client(app) as http:
        name = unique("Alice")
        r = await register(http, name)
        assert r.status_code == 201
        user_id = r.json()["userId"]
        assert r.json() == {"userId": user_id, "username": name}
        assert len(user_id) == 32 and ":" not in user_id

        r = await login(http, name.lower())  # names are case-insensitive
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        body = r.json()
        assert set(body) == {"token", "userId", "username", "expiresAt"}
        assert body["userId"] == user_id and body["username"] == name  # registered spelling
        identity = verify_token(body["token"], settings)
        assert (identity.user_id, identity.username, identity.role) == (user_id, name, "user")
        exp = jwt.decode(body["token"], options={"verify_signature": False})["exp"]
        assert body["expiresAt"].endswith("Z") and len(body["expiresAt"]) == 24
        expires = datetime.strptime(body["expiresAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert expires.timestamp() == exp
        assert exp - datetime.now(UTC).timestamp() == pytest.approx(86400, abs=5)


async def test_duplicate_username_is_409_in_any_case(api):
    async with client(api[1]) as http:
        name = unique("Bob")
        assert (await register(http, name)).status_code == 201
        for again in (name, name.upper()):
            r = await register(http, again, "another-password")
            assert r.status_code == 409
            assert r.json() == {"error": "Username already taken", "code": "username_taken"}
        assert (await login(http, name)).status_code == 200  # the first account is intact


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "invalid_request"),
        (b"not json", "invalid_request"),
        (b"{", "invalid_request"),
        (b"\xff\xfe\x00garbage", "invalid_request"),
        (b"[" * 4000 + b"]" * 4000, "invalid_request"),
        (b"null", "invalid_request"),
        (b'"alice"', "invalid_request"),
        (b'["alice", "password1"]', "invalid_request"),
        (b'{"username": "alice"}', "invalid_request"),
        (b'{"username": 5, "password": "password1"}', "invalid_request"),
        (b'{"username": "alice", "password": true}', "invalid_request"),
        (b'{"username": "al", "password": "password1"}', "invalid_username"),
        (b'{"username": "al ice", "password": "password1"}', "invalid_username"),
        (b'{"username": "alice", "password": "short"}', "invalid_password"),
        (b'{"username": "alice", "password": "\\ud800\\ud800\\ud800\\ud800"}', "invalid_password"),
    ],
)
async def test_bad_register_bodies_are_400_with_a_code(api, content, code):
    async with client(api[1]) as http:
        r = await http.post("/auth/register", content=content)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == code and r.json()["error"]


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"username": "alice"}', b'{"username": "alice", "password": null}'],
)
async def test_bad_login_bodies_are_400(api, content):
    async with client(api[1]) as http:
        r = await http.post("/auth/login", content=content)
        assert r.status_code == 400 and r.json()["code"] == "invalid_request"


async def test_oversized_bodies_are_413(api):
    big = b'{"username": "alice", "password": "' + b"p" * MAX_BODY_BYTES + b'"}'
    async with client(api[1]) as http:
        for path in ("/auth/register", "/auth/login"):
            r = await http.post(path, content=big)
            assert r.status_code == 413 and r.json()["code"] == "too_large"


async def test_wrong_password_and_unknown_user_get_the_same_401(api):
    async with client(api[1]) as http:
        name = unique()
        await register(http, name)
        wrong = await login(http, name, "password2")
        unknown = await login(http, unique("ghost"))
        malformed_name = await login(http, "no such user!")
        for r in (wrong, unknown, malformed_name):
            assert r.status_code == 401
            assert r.json() == {
                "error": "Invalid username or password",
                "code": "invalid_credentials",
            }


async def test_successful_logins_are_not_counted_against_the_user(api):
    async with client(api[1]) as http:
        name = unique()
        await register(http, name)
    statuses = []
    for n in range(8):
        async with client(api[1], ip=f"10.1.0.{n % 2}") as http:
            statuses.append((await login(http, name.upper() if n % 2 else name)).status_code)
    assert statuses == [200] * 8


async def test_guessing_from_one_address_does_not_lock_the_owner_out(api):
    async with client(api[1], ip="10.2.0.1") as http:
        victim, other = unique(), unique()
        await register(http, victim)
        await register(http, other)
    async with client(api[1], ip="10.2.1.1") as attacker:
        for _ in range(5):
            assert (await login(attacker, victim, "guess-guess")).status_code == 401
        r = await login(attacker, victim)  # that address is blocked, even with the password
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        assert r.json() == {"error": "Rate limit exceeded", "code": "rate_limited"}
        assert (await login(attacker, other)).status_code == 200  # other users unaffected
    async with client(api[1], ip="10.2.2.1") as owner:
        assert (await login(owner, victim)).status_code == 200


async def test_a_success_forgives_that_addresses_failures(api):
    async with client(api[1], ip="10.4.0.1") as http:
        name = unique()
        await register(http, name)
        for _ in range(4):
            assert (await login(http, name, "typo-typo")).status_code == 401
        assert (await login(http, name)).status_code == 200
        statuses = [(await login(http, name, "typo-typo")).status_code for _ in range(5)]
        assert statuses == [401] * 5
        assert (await login(http, name)).status_code == 429


async def test_the_per_username_ceiling_stops_distributed_guessing():
    _, app = make_api({"PARLEY_LOGIN_USER_RATE_LIMIT": "6/120"})
    async with client(app, ip="10.5.0.1") as http:
        name = unique()
        await register(http, name)
    for n in range(6):  # one guess from each of six addresses
        async with client(app, ip=f"10.5.1.{n}") as http:
            assert (await login(http, name, "guess-guess")).status_code == 401
    async with client(app, ip="10.5.2.1") as http:
        r = await login(http, name)
    assert r.status_code == 429 and r.headers["retry-after"] == "120"


async def test_registration_is_limited_per_address_and_overall():
    _, app = make_api({"PARLEY_REGISTER_IP_RATE_LIMIT": "3/3600"})
    async with client(app, ip="10.6.0.1") as http:
        statuses = [(await register(http, unique())).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    async with client(app, ip="10.6.0.2") as http:
        assert (await register(http, unique())).status_code == 201
    _, app = make_api({"PARLEY_REGISTER_RATE_LIMIT": "2/60"})
    statuses = []
    for n in range(3):
        async with client(app, ip=f"10.6.1.{n}") as http:
            statuses.append((await register(http, unique())).status_code)
    assert statuses == [201, 201, 429]


async def test_a_full_hash_queue_answers_503_with_retry_after():
    import asyncio

    _, app = make_api({"PARLEY_PASSWORD_BCRYPT_ROUNDS": "10", "PARLEY_HASH_MAX_PENDING": "1"})
    async with client(app, ip="10.7.0.1") as http:
        names = [unique() for _ in range(12)]
        responses = await asyncio.gather(*(register(http, n) for n in names))
    statuses = sorted(r.status_code for r in responses)
    busy = [r for r in responses if r.status_code == 503]
    assert 201 in statuses and busy, statuses
    assert set(statuses) <= {201, 429, 503}
    assert busy[0].headers["retry-after"] == "1"
    assert busy[0].json() == UNAVAILABLE


async def test_per_ip_limit_across_usernames():
    _, app = make_api({"PARLEY_LOGIN_IP_RATE_LIMIT": "3/60"})
    async with client(app, ip="10.3.0.1") as http:
        statuses = [(await login(http, unique("spray"))).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    async with client(app, ip="10.3.0.2") as http:  # another client is unaffected
        assert (await login(http, unique("spray"))).status_code == 401


class DownUsers(MemoryUserStore):
    async def by_username(self, username):
        raise Unavailable("down")

    async def create(self, user):
        raise Unavailable("down")


class DownLimiter:
    async def hit(self, key, limit, now_ms):
        raise Unavailable("redis down")


async def test_backends_down_answer_503_unavailable():
    _, app = make_api(users=DownUsers())
    async with client(app) as http:
        for r in (await register(http, unique()), await login(http, unique())):
            assert r.status_code == 503 and r.json() == UNAVAILABLE
    _, app = make_api(limiter=DownLimiter())
    async with client(app) as http:
        r = await login(http, unique())
        assert r.status_code == 503 and r.json() == UNAVAILABLE


async def test_rs256_login_signs_with_the_private_key_or_answers_503_without_it():
    private, public = rsa_pems()
    rs = {"PARLEY_JWT_ALGORITHM": "RS256", "PARLEY_JWT_PUBLIC_KEY": public}
    users = MemoryUserStore()
    settings, app = make_api({**rs, "PARLEY_JWT_PRIVATE_KEY": private}, users=users)
    async with client(app) as http:
        name = unique()
        assert (await register(http, name)).status_code == 201
        r = await login(http, name)
        assert r.status_code == 200
        assert jwt.get_unverified_header(r.json()["token"])["alg"] == "RS256"
        assert verify_token(r.json()["token"], settings).username == name
    _, app = make_api(rs, users=users)  # verify-only gateway: can register, cannot sign
    async with client(app) as http:
        r = await login(http, name)
        assert r.status_code == 503 and r.json() == UNAVAILABLE


def test_a_private_key_that_does_not_match_stops_the_gateway():
    private, _ = rsa_pems()
    _, other_public = rsa_pems()
    env = {
        "PARLEY_JWT_ALGORITHM": "RS256",
        "PARLEY_JWT_PUBLIC_KEY": other_public,
        "PARLEY_JWT_PRIVATE_KEY": private,
    }
    with pytest.raises(SettingsError, match="PARLEY_JWT_PRIVATE_KEY"):
        make_api(env)
    with pytest.raises(SettingsError, match="PARLEY_JWT_PRIVATE_KEY"):
        make_api({**env, "PARLEY_JWT_PRIVATE_KEY": "garbage"})


async def test_get_is_405_and_cors_follows_the_origin_setting():
    _, app = make_api({"PARLEY_CORS_ORIGINS": "https://chat.example"})
    async with client(app) as http:
        assert (await http.get("/auth/login")).status_code == 405
        preflight = await http.options(
            "/auth/register",
            headers={
                "Origin": "https://chat.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
        evil = await http.options(
            "/auth/register",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert evil.status_code == 400
