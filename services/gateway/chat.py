"""The ``/chat`` namespace: handshake, rooms, messages, typing, history, presence hooks.

Every handler goes through ``_guard``: whatever the payload, an event with an ack callback
gets exactly one ack, ``{status: "ok", ...}`` or the documented ``{status: "error", error,
code}``; nothing a client sends can raise out of a handler or reach the client as a trace.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from services.common.auth import AuthError, Identity, extract_token, verify_token
from services.common.errors import ChatError, Code, Unavailable, error_ack
from services.common.ids import IdGenerator, is_valid_id
from services.common.model import Message, parse_join, parse_new_message, parse_room_id
from services.common.settings import Settings
from services.presence.announce import Announcer
from services.presence.ports import OnlineUser, Session

from . import metrics
from .bootstrap import Components
from .notifications import NotificationsNamespace

NAMESPACE = "/chat"
log = logging.getLogger("parley.gateway.chat")
Handler = Callable[..., Awaitable[Any]]


def personal_room(user_id: str) -> str:
    return f"user:{user_id}"


def may_join(identity: Identity, room_id: str) -> bool:
    """Room rules: ``user:{id}`` only for that user; ``dm:{a}:{b}`` only for a and b."""
    if room_id.startswith("user:"):
        return room_id == personal_room(identity.user_id)
    if room_id.startswith("dm:"):
        parts = room_id.split(":")
        return len(parts) == 3 and identity.user_id in parts[1:] and parts[1] <= parts[2]
    return True


def now_ms() -> int:
    return int(time.time() * 1000)


class ChatNamespace:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        settings: Settings,
        parts: Components,
        notifications: NotificationsNamespace,
    ) -> None:
        self.sio = sio
        self.notifications = notifications
        self.settings = settings
        self.parts = parts
        self.ids = IdGenerator()
        self.identities: dict[str, Identity] = {}  # sid -> identity, sockets of this pod
        self.announcer = Announcer(sio.emit)
        sio.on("connect", self.connect, namespace=NAMESPACE)
        sio.on("disconnect", self.disconnect, namespace=NAMESPACE)
        for event, handler in {
            "room:join": self.room_join,
            "room:leave": self.room_leave,
            "chat:message": self.chat_message,
            "chat:typing": self.chat_typing,
            "chat:history": self.chat_history,
        }.items():
            sio.on(event, self._guard(event, handler), namespace=NAMESPACE)

    # --- plumbing -------------------------------------------------------------------------

    def _guard(self, event: str, handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(sid: str, *args: Any) -> Any:
            started = time.perf_counter()
            payload = args[0] if args else None
            identity = self.identities.get(sid)
            try:
                if identity is None:
                    raise ChatError(Code.FORBIDDEN, "no identity for this socket")
                result = await handler(sid, identity, payload)
                outcome = "ok"
            except ChatError as exc:
                outcome = exc.code.value
                log.debug("%s refused for sid=%s: %s", event, sid, exc.detail or exc.code)
                result = exc.ack()
            except Exception:
                metrics.HANDLER_ERRORS.inc()
                log.exception("%s failed for sid=%s", event, sid)
                outcome = "error"
                result = error_ack(Code.UNAVAILABLE)
            metrics.EVENTS.labels(event, outcome).inc()
            metrics.EVENT_SECONDS.labels(event).observe(time.perf_counter() - started)
            return result

        return guarded

    def session(self, sid: str, identity: Identity) -> Session:
        return Session(identity.user_id, identity.username, sid, self.settings.pod_id)

    def in_room(self, sid: str, room_id: str) -> bool:
        return room_id in self.sio.rooms(sid, namespace=NAMESPACE)

    # --- lifecycle ------------------------------------------------------------------------

    async def connect(self, sid: str, environ: dict, auth: object = None) -> None:
        try:
            identity = verify_token(extract_token(auth), self.settings)
        except AuthError as exc:
            metrics.HANDSHAKES_REFUSED.labels(exc.code).inc()
            raise socketio.exceptions.ConnectionRefusedError(
                exc.message, {"code": exc.code}
            ) from None
        try:
            went_online = await self.parts.presence.connect(self.session(sid, identity), now_ms())
            online = await self.parts.presence.online_users()
        except Unavailable as exc:
            log.warning("presence unavailable at connect: %s", exc)
            metrics.HANDSHAKES_REFUSED.labels("unavailable").inc()
            raise socketio.exceptions.ConnectionRefusedError(
                "Temporarily unavailable, retry", {"code": Code.UNAVAILABLE.value}
            ) from None
        self.identities[sid] = identity
        metrics.CONNECTIONS.labels(NAMESPACE).inc()
        await self.sio.enter_room(sid, personal_room(identity.user_id), namespace=NAMESPACE)
        await self.sio.emit(
            "presence:list", [u.to_wire() for u in online], to=sid, namespace=NAMESPACE
        )
        if went_online:
            await self.announcer.online(
                OnlineUser(identity.user_id, identity.username), skip_sid=sid
            )

    async def disconnect(self, sid: str, reason: object = None) -> None:
        identity = self.identities.pop(sid, None)
        if identity is None:
            return
        metrics.CONNECTIONS.labels(NAMESPACE).dec()
        try:
            went_offline = await self.parts.presence.disconnect(
                self.session(sid, identity), now_ms()
            )
        except Unavailable as exc:  # the reaper cleans this pod's sessions if it never recovers
            log.warning("presence unavailable at disconnect of sid=%s: %s", sid, exc)
            return
        if went_offline:
            await self.announcer.offline(OnlineUser(identity.user_id, identity.username))

    # --- events ---------------------------------------------------------------------------

    async def room_join(self, sid: str, identity: Identity, payload: object) -> dict:
        s = self.settings
        request = parse_join(payload, s.history_default_limit, s.history_max_limit)
        room_id = request.room_id
        if not may_join(identity, room_id):
            raise ChatError(Code.FORBIDDEN, f"may not join {room_id}")
        if room_id == personal_room(identity.user_id):
            return {"status": "ok", "roomId": room_id}
        already = self.in_room(sid, room_id)
        await self.sio.enter_room(sid, room_id, namespace=NAMESPACE)
        if not already:
            joined = {"userId": identity.user_id, "username": identity.username, "roomId": room_id}
            await self.sio.emit(
                "room:user-joined", joined, room=room_id, skip_sid=sid, namespace=NAMESPACE
            )
        history: dict[str, Any] = {"roomId": room_id}
        if request.since is not None:
            messages, has_more = await self.parts.store.after(room_id, request.since, s.resync_cap)
            history["hasMore"] = has_more
        else:
            messages = await self.parts.store.recent(room_id, request.limit)
        history["messages"] = [m.to_wire() for m in messages]
        await self.sio.emit("room:history", history, to=sid, namespace=NAMESPACE)
        return {"status": "ok", "roomId": room_id}

    async def room_leave(self, sid: str, identity: Identity, payload: object) -> dict:
        room_id = parse_room_id(payload.get("roomId") if isinstance(payload, dict) else payload)
        if room_id == personal_room(identity.user_id) or not self.in_room(sid, room_id):
            return {"status": "ok", "roomId": room_id}
        await self.sio.leave_room(sid, room_id, namespace=NAMESPACE)
        left = {"userId": identity.user_id, "username": identity.username, "roomId": room_id}
        await self.sio.emit("room:user-left", left, room=room_id, namespace=NAMESPACE)
        return {"status": "ok", "roomId": room_id}

    async def chat_message(self, sid: str, identity: Identity, payload: object) -> dict:
        request = parse_new_message(payload, self.settings.message_max_chars)
        if not self.in_room(sid, request.room_id):
            raise ChatError(Code.FORBIDDEN, "not in room")
        message_id, created_ms = self.ids.new_id()
        message = Message(
            id=message_id,
            room_id=request.room_id,
            user_id=identity.user_id,
            username=identity.username,
            text=request.text,
            created_ms=created_ms,
            reply_to=request.reply_to,
            client_msg_id=request.client_msg_id,
        )
        await self.parts.log.append(message)  # durable before anything is acked or delivered
        metrics.MESSAGES_ACCEPTED.inc()
        await self.sio.emit(
            "chat:message", message.to_wire(), room=request.room_id, namespace=NAMESPACE
        )
        return {"status": "ok", "messageId": message_id}

    async def chat_typing(self, sid: str, identity: Identity, payload: object) -> dict:
        if not isinstance(payload, dict):
            raise ChatError(Code.INVALID_MESSAGE, "typing takes an object")
        room_id = parse_room_id(payload.get("roomId"))
        if not self.in_room(sid, room_id):
            raise ChatError(Code.FORBIDDEN, "not in room")
        typing = {
            "userId": identity.user_id,
            "username": identity.username,
            "roomId": room_id,
            "isTyping": bool(payload.get("isTyping")),
        }
        await self.sio.emit("chat:typing", typing, room=room_id, skip_sid=sid, namespace=NAMESPACE)
        return {"status": "ok"}

    async def chat_history(self, sid: str, identity: Identity, payload: object) -> dict:
        if not isinstance(payload, dict):
            raise ChatError(Code.INVALID_MESSAGE, "history takes an object")
        room_id = parse_room_id(payload.get("roomId"))
        if not self.in_room(sid, room_id):
            raise ChatError(Code.FORBIDDEN, "not in room")
        request = parse_join(
            {"roomId": room_id, "limit": payload.get("limit")},
            self.settings.history_default_limit,
            self.settings.history_max_limit,
        )
        before = payload.get("before")
        if before is not None and not is_valid_id(before):
            raise ChatError(Code.INVALID_MESSAGE, "before must be a message id")
        messages, has_more = await self.parts.store.before(room_id, before, request.limit)
        return {"status": "ok", "messages": [m.to_wire() for m in messages], "hasMore": has_more}
