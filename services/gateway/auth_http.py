"""HTTP ``POST /auth/register`` and ``POST /auth/login``: accounts and the tokens ``/chat`` takes.

- register ``{username, password}``: 201 ``{userId, username}``; 409 ``username_taken``; 400
  ``invalid_request`` / ``invalid_username`` / ``invalid_password`` (rules in
  ``services.persistence.users``).
- login ``{username, password}``: 200 ``{token, userId, username, expiresAt}``. The token is
  the same JWT ``verify_token`` checks: ``sub`` = user id, and ``expiresAt`` is its ``exp``.
  A wrong password and an unknown user both get 401 ``invalid_credentials``, and both cost
  one bcrypt check. Rate limited per client IP and per username (429 ``rate_limited`` with
  ``Retry-After``), through the shared ``RateLimiter`` (Redis in cluster mode). The client
  IP is the peer address; behind nginx, uvicorn takes it from ``X-Forwarded-For``
  (``FORWARDED_ALLOW_IPS``).

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
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from services.common.auth import AuthError, SigningUnavailable, issue_token, verify_token
from services.common.errors import TEXTS, Code, Unavailable
from services.common.model import iso_ms
from services.common.ratelimit import Limit, parse_limit
from services.common.settings import Settings, SettingsError
from services.persistence.users import (
    INVALID_REQUEST,
    InvalidCredentials,
    User,
    UsernameTaken,
    is_valid_username,
    new_user_id,
    parse_credentials,
    parse_registration,
    username_key,
)
from services.persistence.users import (
    TEXTS as RULE_TEXTS,
)

from . import metrics
from .passwords import Hasher

if TYPE_CHECKING:
    from .app import Gateway

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


def unavailable() -> Refusal:
    return Refusal(503, Code.UNAVAILABLE.value, TEXTS[Code.UNAVAILABLE])


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
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        settings = self.settings = gateway.settings
        self.hasher = Hasher(settings.password_bcrypt_rounds)
        self.user_limit = parse_limit(settings.login_rate_limit, "PARLEY_LOGIN_RATE_LIMIT")
        self.ip_limit = parse_limit(settings.login_ip_rate_limit, "PARLEY_LOGIN_IP_RATE_LIMIT")
        self.can_sign = can_sign(settings)

    @property
    def parts(self):
        return self.gateway.parts

    def endpoint(
        self, name: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            try:
                response, outcome = await handler(request), "ok"
            except Refusal as refusal:
                response, outcome = refusal.response(), refusal.code
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
        users = self.parts.users
        if await users.by_username(credentials.username) is not None:
            raise taken()  # early, before paying for a hash; create() still decides races
        password_hash = await self.hasher.hash(credentials.password)
        user = User(new_user_id(), credentials.username, password_hash, int(time.time() * 1000))
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
        await self._limit(client_ip(request), credentials.username if name_ok else None)
        user = await self.parts.users.by_username(credentials.username) if name_ok else None
        # an unknown user costs the same bcrypt check as a wrong password: no timing oracle
        ok = await self.hasher.check(credentials.password, user.password_hash if user else None)
        if user is None or not ok:
            log.debug("login refused from %s", client_ip(request))
            raise wrong_credentials()
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

    async def _limit(self, ip: str, username: str | None) -> None:
        """One hit per client IP, then per username; the first bucket that is full refuses."""
        now_ms = int(time.time() * 1000)
        limiter = self.parts.limiter
        if not await limiter.hit(f"login:ip:{ip}", self.ip_limit, now_ms):
            raise rate_limited(self.ip_limit)
        if username is not None:
            key = f"login:user:{username_key(username)}"
            if not await limiter.hit(key, self.user_limit, now_ms):
                raise rate_limited(self.user_limit)


def auth_routes(gateway: Gateway) -> list[BaseRoute]:
    api = AuthApi(gateway)
    origins = [o.strip() for o in gateway.settings.cors_origins.split(",") if o.strip()]
    app = Starlette(
        routes=[
            Route("/register", api.endpoint("register", api.register), methods=["POST"]),
            Route("/login", api.endpoint("login", api.login), methods=["POST"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["POST"],
                allow_headers=["Content-Type"],
            )
        ],
    )
    return [Mount("/auth", app=app)]
