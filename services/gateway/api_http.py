"""The Server API: HTTP + JSON under ``/api/v1`` for backend services (PROTOCOL.md "Server
API"; the OpenAPI 3.1 document of it is ``api_openapi.py``, served at ``/api/v1/openapi.json``).

Mounted only when ``PARLEY_API_KEYS`` names at least one key (otherwise every ``/api`` path
answers 404). Each request: the bearer key (401), its scope (403; ``admin`` implies every
scope), the key's rate limit (429 + ``Retry-After``, shared by every pod through the limiter),
then the route. Errors are ``{error: <code>, message: <text>}``: 400 malformed (JSON, room id,
query), 413 body over ``PARLEY_API_MAX_BODY_BYTES``, 422 a body that breaks the schema
(unknown fields included), 503 a backend down. No input gives a trace; keys are never logged
(only their names).

- messages go through the same ``AcceptPipeline`` as ``chat:message``: ``201 {messageId}``
  only once durable; same ``clientMsgId`` from the same identity → the first id, stored once.
  The identity is the key's (``api:<name>``) or, with ``admin``, the user of ``userId``.
- join/leave/disconnect are control-bus commands every pod runs for its own sockets
  (``server_side.py``); the request waits (bounded) until the presence store shows them done.
  A join is also stored (``memberships.py``), offline users included: their later sockets are
  joined on connect; a DELETE (or the user's ``room:leave``) ends it. Membership changes are
  recorded for the ``room.member_joined`` / ``-left`` webhooks (``events.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from services.common.apikeys import ApiKey, find
from services.common.auth import Identity
from services.common.clock import now_ms
from services.common.errors import ChatError, Unavailable
from services.common.ids import is_valid_id
from services.common.model import iso_ms, parse_new_message, parse_room_id
from services.common.settings import Settings
from services.storage.control import DISCONNECT, JOIN, LEAVE, Command
from services.storage.events import MEMBER_JOINED, MEMBER_LEFT

from . import api_openapi
from .bootstrap import Components
from .chat import NAMESPACE as CHAT
from .chat import ChatNamespace
from .notifications import NAMESPACE as NOTIFICATIONS
from .rooms import dm_members, personal_room

log = logging.getLogger("parley.gateway.api")
PREFIX = "/api/v1"
APP_NAME = re.compile(r"^app:[A-Za-z0-9_.:\-]{1,100}$")
MAX_USER_ID_CHARS = 200
CONFIRM_SECONDS = 5.0  # how long join/leave/disconnect wait for every pod to have done it
REQUESTS = Counter(
    "parley_api_requests_total", "Server API requests by route and status", ["route", "status"]
)
Handler = Callable[[Request, ApiKey], Awaitable[Response]]


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers

    def response(self) -> JSONResponse:
        body = {"error": self.error, "message": self.message}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_request", message)


def malformed(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def room_of(request: Request) -> str:
    try:
        return parse_room_id(request.path_params["room"])
    except ChatError as exc:
        raise malformed(f"bad room id: {exc.detail}") from None


def user_of(request: Request) -> str:
    user_id = request.path_params["user"]
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_USER_ID_CHARS:
        raise malformed("bad user id")
    return user_id


async def read_body(request: Request, cap: int, allowed: frozenset[str] | None) -> dict[str, Any]:
    """The JSON object of the body; ``allowed``: the only fields it may have (None: any)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise ApiError(413, "too_large", f"request body over {cap} bytes")
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > cap:
                raise ApiError(413, "too_large", f"request body over {cap} bytes")
    except ClientDisconnect:
        raise malformed("request body incomplete") from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise malformed("request body is not JSON") from None
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    if allowed is not None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise invalid(f"unknown fields: {', '.join(unknown[:5])}")
    return body


async def until(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if await check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


class ServerApi:
    def __init__(
        self,
        settings: Settings,
        parts: Components,
        sio: socketio.AsyncServer,
        chat: ChatNamespace,
    ) -> None:
        self.settings = settings
        self.parts = parts
        self.sio = sio
        self.chat = chat
        self.keys = settings.api_key_list
        self.limit = settings.api_limit
        self.cap = settings.api_max_body_bytes
        self.document = api_openapi.document()

    # --- the frame of every route -------------------------------------------------------

    def route(
        self, name: str, scope: str, handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                key = self.authenticate(request)
                if not key.allows(scope):
                    raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope")
                await self.rate_limit(key)
                response = await handler(request, key)
            except ApiError as exc:
                response = exc.response()
            except Unavailable as exc:
                log.warning("%s: backend unavailable: %s", name, exc.detail)
                response = ApiError(503, "unavailable", "backend unavailable, retry").response()
            except ChatError as exc:
                response = invalid(exc.detail or str(exc)).response()
            except TimeoutError:
                response = ApiError(503, "unavailable", "backend timed out, retry").response()
            except Exception:
                log.exception("%s failed", name)
                response = ApiError(500, "internal", "internal error").response()
            REQUESTS.labels(name, str(response.status_code)).inc()
            return response

        return endpoint

    def authenticate(self, request: Request) -> ApiKey:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        key = find(self.keys, presented.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing or invalid API key (Authorization: Bearer <key>)",
                headers={"WWW-Authenticate": 'Bearer realm="parley-api"'},
            )
        return key

    async def rate_limit(self, key: ApiKey) -> None:
        if not await self.parts.limiter.hit(f"api:{key.name}", self.limit, now_ms()):
            retry = str(max(1, math.ceil(self.limit.window_ms / 1000)))
            raise ApiError(
                429, "rate_limited", "rate limit of this key exceeded", {"Retry-After": retry}
            )

    # --- routes ---------------------------------------------------------------------------

    async def openapi(self, _: Request) -> Response:
        return JSONResponse(self.document)

    async def post_message(self, request: Request, key: ApiKey) -> Response:
        room_id = room_of(request)
        body = await read_body(
            request, self.cap, frozenset({"text", "userId", "clientMsgId", "replyTo"})
        )
        new = parse_new_message({**body, "roomId": room_id}, self.settings.message_max_chars)
        self.check_room(room_id, key)
        user_id = body.get("userId")
        if user_id is not None:
            if not key.allows("admin"):
                raise ApiError(403, "forbidden", "posting as a user needs the 'admin' scope")
            if not isinstance(user_id, str) or not user_id or len(user_id) > MAX_USER_ID_CHARS:
                raise invalid("userId must be a non-empty string")
            identity = Identity(user_id, await self.username(user_id))
        else:
            identity = Identity(f"api:{key.name}", key.name, role="service")
        accepted = await self.chat.pipeline.accept(
            identity,
            room_id,
            new.text,
            reply_to=new.reply_to,
            client_msg_id=new.client_msg_id,
        )
        # a retry of an accepted clientMsgId answers the same: the first id, 201
        return JSONResponse({"messageId": accepted.message_id}, status_code=201)

    def check_room(self, room_id: str, key: ApiKey) -> None:
        """``user:`` rooms are personal (notifications are for them); ``dm:`` needs admin."""
        if room_id.startswith("user:"):
            raise malformed("user: rooms are personal; use /users/{userId}/notifications")
        if room_id.startswith("dm:") and not key.allows("admin"):
            raise ApiError(403, "forbidden", "dm: rooms need the 'admin' scope")

    async def username(self, user_id: str) -> str:
        user = await self.parts.users.by_id(user_id)
        return user.username if user is not None else user_id

    async def post_event(self, request: Request, key: ApiKey) -> Response:
        room_id = room_of(request)
        body = await read_body(request, self.cap, frozenset({"event", "data"}))
        event = body.get("event")
        if not isinstance(event, str) or not APP_NAME.match(event):
            raise invalid("event must match app:<name> (letters, digits, _ . : -)")
        self.check_room(room_id, key)
        await self.sio.emit(event, body.get("data"), room=room_id, namespace=CHAT)
        return JSONResponse({"roomId": room_id, "event": event}, status_code=202)

    async def post_notification(self, request: Request, key: ApiKey) -> Response:
        user_id = user_of(request)
        body = await read_body(request, self.cap, None)
        kind = body.get("type")
        if not isinstance(kind, str) or not APP_NAME.match(kind):
            raise invalid("type must match app:<name> (mention, dm and system are Parley's)")
        body.setdefault("timestamp", iso_ms(now_ms()))
        await self.sio.emit(
            "notification", body, room=personal_room(user_id), namespace=NOTIFICATIONS
        )
        return JSONResponse({"userId": user_id, "type": kind}, status_code=202)

    async def sockets_in_room(self, user_id: str, room_id: str) -> int:
        for member in await self.parts.presence.room_members(room_id):
            if member.user_id == user_id:
                return member.sockets
        return 0

    async def live_sids(self, user_id: str) -> list[str]:
        return [d["sid"] for d in (await self.parts.presence.user(user_id)).devices]

    async def put_member(self, request: Request, key: ApiKey) -> Response:
        """Store the membership (kept while the user is offline: the ACL and every later
        socket of the user honour it), then join every live socket of the user, on any pod."""
        room_id, user_id = room_of(request), user_of(request)
        self.check_room(room_id, key)
        members = dm_members(room_id)
        if room_id.startswith("dm:") and (members is None or user_id not in members):
            raise ApiError(403, "forbidden", f"{user_id} is not a participant of {room_id}")
        sids = await self.live_sids(user_id)
        before = await self.sockets_in_room(user_id, room_id)
        name = await self.username(user_id)
        stored_now = await self.parts.memberships.add(user_id, name, room_id)
        if sids and before < len(sids):
            await self.publish(Command(JOIN, user_id, self.settings.pod_id, room_id=room_id))

            async def joined() -> bool:
                return await self.sockets_in_room(user_id, room_id) >= len(sids)

            await until(joined, CONFIRM_SECONDS)
        sockets = await self.sockets_in_room(user_id, room_id)
        if before == 0 and sockets > 0:  # the room hears of a new member once
            name = next(
                (
                    m.username
                    for m in await self.parts.presence.room_members(room_id)
                    if m.user_id == user_id
                ),
                name,
            )
            joined_event = {"userId": user_id, "username": name, "roomId": room_id}
            await self.sio.emit(
                "room:user-joined", joined_event, room=room_id, skip_sid=sids, namespace=CHAT
            )
        if stored_now and before == 0:  # a new member: not stored before, no socket in it
            self.chat.record_member(MEMBER_JOINED, user_id, name, room_id, "api")
        return JSONResponse({"roomId": room_id, "userId": user_id, "sockets": sockets})

    async def delete_member(self, request: Request, key: ApiKey) -> Response:
        """Forget the stored membership and take every live socket of the user out."""
        room_id, user_id = room_of(request), user_of(request)
        self.check_room(room_id, key)
        stored = await self.parts.memberships.members(room_id)
        unstored = await self.parts.memberships.remove(user_id, room_id)
        members = {m.user_id: m for m in await self.parts.presence.room_members(room_id)}
        member = members.get(user_id)
        name = member.username if member is not None else stored.get(user_id, user_id)
        if member is not None:
            await self.publish(Command(LEAVE, user_id, self.settings.pod_id, room_id=room_id))

            async def left() -> bool:
                return await self.sockets_in_room(user_id, room_id) == 0

            if await until(left, CONFIRM_SECONDS):
                left_event = {"userId": user_id, "username": name, "roomId": room_id}
                await self.sio.emit("room:user-left", left_event, room=room_id, namespace=CHAT)
        if unstored or member is not None:
            self.chat.record_member(MEMBER_LEFT, user_id, name, room_id, "api")
        remaining = await self.sockets_in_room(user_id, room_id)
        return JSONResponse({"roomId": room_id, "userId": user_id, "sockets": remaining})

    async def get_members(self, request: Request, key: ApiKey) -> Response:
        """Users with a socket in the room (any pod) and stored members with none."""
        room_id = room_of(request)
        live = await self.parts.presence.room_members(room_id)
        members: list[dict[str, Any]] = [
            {"userId": m.user_id, "username": m.username, "online": True, "sockets": m.sockets}
            for m in live
        ]
        in_room = {m.user_id for m in live}
        stored = await self.parts.memberships.members(room_id)
        for user_id in sorted(set(stored) - in_room):
            online = (await self.parts.presence.user(user_id)).online
            members.append(
                {"userId": user_id, "username": stored[user_id], "online": online, "sockets": 0}
            )
        return JSONResponse({"roomId": room_id, "members": members})

    async def get_messages(self, request: Request, key: ApiKey) -> Response:
        room_id = room_of(request)
        query = request.query_params
        unknown = sorted(set(query) - {"before", "limit"})
        if unknown:
            raise malformed(f"unknown query parameters: {', '.join(unknown[:5])}")
        s = self.settings
        limit = s.history_default_limit
        if "limit" in query:
            raw = query["limit"]
            if not raw.isdigit() or not 1 <= int(raw) <= s.history_max_limit:
                raise malformed(f"limit must be 1..{s.history_max_limit}")
            limit = int(raw)
        before = query.get("before")
        if before is not None and not is_valid_id(before):
            raise malformed("before must be a message id")
        messages, has_more = await self.parts.store.before(room_id, before, limit)
        return JSONResponse(
            {"roomId": room_id, "messages": self.chat._readable(messages), "hasMore": has_more}
        )

    async def get_presence(self, request: Request, key: ApiKey) -> Response:
        user_id = user_of(request)
        presence = await self.parts.presence.user(user_id)
        body: dict[str, Any] = {
            "userId": user_id,
            "online": presence.online,
            "sockets": len(presence.devices),
        }
        if not presence.online and presence.last_seen_ms is not None:
            body["since"] = iso_ms(presence.last_seen_ms)  # offline since
        return JSONResponse(body)

    async def post_disconnect(self, request: Request, key: ApiKey) -> Response:
        user_id = user_of(request)
        sockets = len(await self.live_sids(user_id))
        await self.publish(Command(DISCONNECT, user_id, self.settings.pod_id))

        async def gone() -> bool:
            return not await self.live_sids(user_id)

        await until(gone, CONFIRM_SECONDS)
        return JSONResponse({"userId": user_id, "sockets": sockets})

    async def publish(self, command: Command) -> None:
        reached = await self.parts.control.publish(command)
        log.info("server API %s of %s: %d pods reached", command.op, command.user_id, reached)


def api_routes(
    settings: Settings, parts: Components, sio: socketio.AsyncServer, chat: ChatNamespace
) -> list[BaseRoute]:
    """The ``/api/v1`` mount, or nothing when no key is configured (the API answers 404)."""
    if not settings.api_key_list:
        return []
    api = ServerApi(settings, parts, sio, chat)
    table = [  # path, method, metric name, scope, handler
        ("/rooms/{room}/messages", "POST", "post_message", "publish", api.post_message),
        ("/rooms/{room}/messages", "GET", "get_messages", "read", api.get_messages),
        ("/rooms/{room}/events", "POST", "post_event", "publish", api.post_event),
        ("/rooms/{room}/members", "GET", "get_members", "read", api.get_members),
        ("/rooms/{room}/members/{user}", "PUT", "put_member", "rooms", api.put_member),
        ("/rooms/{room}/members/{user}", "DELETE", "delete_member", "rooms", api.delete_member),
        ("/users/{user}/notifications", "POST", "post_notice", "publish", api.post_notification),
        ("/users/{user}/presence", "GET", "get_presence", "read", api.get_presence),
        ("/users/{user}/disconnect", "POST", "post_disconnect", "admin", api.post_disconnect),
    ]  # fmt: skip
    routes = [Route("/openapi.json", api.openapi, methods=["GET"])] + [
        Route(path, api.route(name, scope, handler), methods=[method])
        for path, method, name, scope, handler in table
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    return [Mount(PREFIX, app=app)]


async def http_error(_: Request, exc: Exception) -> Response:
    """The router's own answers (unknown path 404, wrong method 405) as ``{error, message}``."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    headers = getattr(exc, "headers", None)
    return ApiError(status, error, f"no such route ({status})", headers).response()
