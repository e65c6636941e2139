"""HTTP ``POST /auth/register`` and ``POST /auth/login``: accounts and the tokens ``/chat`` takes.

- register ``{username, password}``: 201 ``{userId, username}``; 409 ``username_taken``; 400
  ``invalid_request`` / ``invalid_username`` / ``invalid_password`` (rules in
  ``services.storage.users``).
- login ``{username, password}``: 200 ``{token, userId, username, expiresAt}``. The token is
  the same JWT ``verify_token`` checks: ``sub`` = user id, and ``expiresAt`` is its ``exp``.
  A wrong password and an unknown user both get 401 ``invalid_credentials``, and both cost
  one bcrypt check.

Limits (429 ``rate_limited`` with ``Retry-After``, through the shared ``RateLimiter``, so
Redis in cluster mode counts for every pod):
- login, per client IP: every attempt (``PARLEY_LOGIN_IP_RATE_LIMIT``);
- login, per (username, client IP): *failures* only (``PARLEY_LOGIN_RATE_LIMIT``), cleared by
  a success — someone guessing a password from one address cannot lock the owner out from
  another;
- login, per username from all addresses: failures only, a looser ceiling
  (``PARLEY_LOGIN_USER_RATE_LIMIT``) against distributed guessing; while it is full the
  username's logins wait out the sliding window (``Retry-After``);
- register, per client IP (``PARLEY_REGISTER_IP_RATE_LIMIT``) and for all clients
  (``PARLEY_REGISTER_RATE_LIMIT``), both before any hashing.
bcrypt runs on at most one thread per CPU with at most ``PARLEY_HASH_MAX_PENDING`` jobs
waiting; beyond that 503 ``unavailable`` with ``Retry-After: 1``.

The client IP is the peer address, or the ``X-Forwarded-For`` entry set by a proxy listed in
``PARLEY_TRUSTED_PROXIES`` (uvicorn's proxy headers middleware, configured from it).

Every error is ``{error: <human text>, code: <machine code>}``. A body that is too large
(> 8 KiB) gets 413. A backend that is down (store, limiter) gets 503 ``unavailable``, and so
does a login under RS256 when no private key is configured. No input gives a 500. CORS
follows ``PARLEY_CORS_ORIGINS``, like the Socket.IO endpoint.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from services.common.auth import AuthError, SigningUnavailable, issue_token, verify_token
from services.common.clock import now_ms
from services.common.errors import TEXTS, Code, SettingsError, Unavailable
from services.common.limits import Limit
from services.common.model import iso_ms
from services.common.settings import Settings
from services.storage.ratelimit import RateLimiter
from services.storage.users import (
    INVALID_REQUEST,
    InvalidCredentials,
    User,
    UsernameTaken,
    UserStore,
    is_valid_username,
    new_user_id,
    parse_credentials,
    parse_registration,
    username_key,
)
from services.storage.users import (
    TEXTS as RULE_TEXTS,
)

from . import metrics
from .passwords import Busy, Hasher

log = logging.getLogger("parley.gateway.auth")
MAX_BODY_BYTES = 8 * 1024


class Refusal(Exception):
    """An answer other than success: ``status`` and the ``{error, code}`` body."""

    def __init__(
        self, status: int, code: str, text: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(text)
        self.status, self.code, self.text, self.headers = status, code, text, headers

    def response(self) -> JSONResponse:
        body = {"error": self.text, "code": self.code}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def unavailable(retry_after: int | None = None) -> Refusal:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return Refusal(503, Code.UNAVAILABLE.value, TEXTS[Code.UNAVAILABLE], headers=headers)


def rate_limited(limit: Limit) -> Refusal:
    retry = str(max(1, math.ceil(limit.window_ms / 1000)))
    return Refusal(
        429, Code.RATE_LIMITED.value, TEXTS[Code.RATE_LIMITED], headers={"Retry-After": retry}
    )


def taken() -> Refusal:
    return Refusal(409, "username_taken", "Username already taken")


def wrong_credentials() -> Refusal:
    return Refusal(401, "invalid_credentials", "Invalid username or password")


def bad_body() -> Refusal:
    return Refusal(400, INVALID_REQUEST, RULE_TEXTS[INVALID_REQUEST])


def too_large() -> Refusal:
    return Refusal(413, Code.TOO_LARGE.value, "Request body too large")


async def read_json(request: Request) -> object:
    """The request body parsed as JSON, at most ``MAX_BODY_BYTES`` (else a ``Refusal``)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large()
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                raise too_large()
    except ClientDisconnect:
        raise bad_body() from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise bad_body() from None


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def can_sign(settings: Settings) -> bool:
    """Startup check: can this process issue tokens that ``verify_token`` accepts?

    RS256 without a private key: False (login answers 503). A private key that is malformed
    or does not match ``PARLEY_JWT_PUBLIC_KEY`` stops the process with ``SettingsError``.
    """
    if settings.jwt_algorithm == "RS256" and not settings.jwt_private_key:
        log.warning("RS256 without PARLEY_JWT_PRIVATE_KEY: POST /auth/login answers 503")
        return False
    try:
        verify_token(issue_token(settings, "signing-probe", ttl_seconds=60), settings)
    except SigningUnavailable as exc:
        raise SettingsError(str(exc)) from None
    except AuthError:
        raise SettingsError(
            "PARLEY_JWT_PRIVATE_KEY: tokens it signs fail PARLEY_JWT_PUBLIC_KEY verification"
        ) from None
    return True


class AuthApi:
    def __init__(self, settings: Settings, users: UserStore, limiter: RateLimiter) -> None:
        self.settings = settings
        self.users = users
        self.limiter = limiter
        self.hasher = Hasher(settings.password_bcrypt_rounds, max_pending=settings.hash_max_pending)
        self.pair_limit = settings.login_pair_limit
        self.user_ceiling = settings.login_user_limit
        self.ip_limit = settings.login_ip_limit
        self.register_ip_limit = settings.register_ip_limit
        self.register_limit = settings.register_all_limit
        self.can_sign = can_sign(settings)

    def endpoint(
        self, name: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            try:
                response, outcome = await handler(request), "ok"
            except Refusal as refusal:
                response, outcome = refusal.response(), refusal.code
            except Busy as exc:
                log.warning("%s: %s; answering 503", name, exc)
                response, outcome = unavailable(retry_after=1).response(), "busy"
            except Unavailable as exc:
                log.warning("%s: backend unavailable: %s", name, exc)
                response, outcome = unavailable().response(), Code.UNAVAILABLE.value
            except Exception:
                log.exception("%s failed", name)
                body = {"error": "Internal error", "code": "internal"}
                response, outcome = JSONResponse(body, status_code=500), "internal"
            metrics.AUTH_REQUESTS.labels(name, outcome).inc()
            return response

        return guarded

    async def register(self, request: Request) -> Response:
        try:
            credentials = parse_registration(await read_json(request))
        except InvalidCredentials as exc:
            raise Refusal(400, exc.code, exc.text) from None
        now = now_ms()
        limiter = self.limiter
        if not await limiter.hit(f"register:ip:{client_ip(request)}", self.register_ip_limit, now):
            raise rate_limited(self.register_ip_limit)
        if not await limiter.hit("register:all", self.register_limit, now):
            raise rate_limited(self.register_limit)
        users = self.users
        if await users.by_username(credentials.username) is not None:
            raise taken()  # early, before paying for a hash; create() still decides races
        password_hash = await self.hasher.hash(credentials.password)
        user = User(new_user_id(), credentials.username, password_hash, now_ms())
        try:
            await users.create(user)
        except UsernameTaken:
            raise taken() from None
        log.info("registered user %s", user.user_id)
        return JSONResponse({"userId": user.user_id, "username": user.username}, 201)

    async def login(self, request: Request) -> Response:
        try:
            credentials = parse_credentials(await read_json(request))
        except InvalidCredentials as exc:
            raise Refusal(400, exc.code, exc.text) from None
        if not self.can_sign:
            raise unavailable()
        name_ok = is_valid_username(credentials.username)
        ip = client_ip(request)
        buckets = self._failure_buckets(ip, credentials.username) if name_ok else []
        await self._limit(ip, buckets)
        user = await self.users.by_username(credentials.username) if name_ok else None
        # an unknown user costs the same bcrypt check as a wrong password: no timing oracle
        ok = await self.hasher.check(credentials.password, user.password_hash if user else None)
        if user is None or not ok:
            log.debug("login refused from %s", ip)
            now = now_ms()
            for key, limit in buckets:
                await self.limiter.hit(key, limit, now)
            raise wrong_credentials()
        if buckets:  # the owner got in from here: this address's failures are forgiven
            await self.limiter.reset(buckets[0][0])
        issued = int(time.time())
        ttl = self.settings.login_token_ttl_seconds
        try:
            token = issue_token(
                self.settings, user.user_id, user.username, ttl_seconds=ttl, now=issued
            )
        except SigningUnavailable as exc:
            log.error("cannot sign tokens: %s", exc)
            raise unavailable() from None
        body = {
            "token": token,
            "userId": user.user_id,
            "username": user.username,
            "expiresAt": iso_ms((issued + ttl) * 1000),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _failure_buckets(self, ip: str, username: str) -> list[tuple[str, Limit]]:
        """The failure counters of a login: (username, IP) first, then the username's."""
        name = username_key(username)
        return [
            (f"login:fail:{name}:{ip}", self.pair_limit),
            (f"login:fail:{name}", self.user_ceiling),
        ]

    async def _limit(self, ip: str, buckets: list[tuple[str, Limit]]) -> None:
        """One hit per client IP (every attempt); then refuse if a failure bucket is full."""
        now = now_ms()
        limiter = self.limiter
        if not await limiter.hit(f"login:ip:{ip}", self.ip_limit, now):
            raise rate_limited(self.ip_limit)
        for key, limit in buckets:
            if await limiter.full(key, limit, now):
                raise rate_limited(limit)


def auth_routes(settings: Settings, users: UserStore, limiter: RateLimiter) -> list[BaseRoute]:
    api = AuthApi(settings, users, limiter)
    origins = settings.cors_origin_list
    app = Starlette(
        routes=[
            Route("/register", api.endpoint("register", api.register), methods=["POST"]),
            Route("/login", api.endpoint("login", api.login), methods=["POST"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_credentials=settings.cors_credentials,
                allow_methods=["POST"],
                allow_headers=["Content-Type"],
            )
        ],
    )
    return [Mount("/auth", app=app)]
