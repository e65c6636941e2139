"""The ``/chat`` namespace: handshake, rooms, messages, typing, history, presence hooks.

Every handler goes through ``_guard``: whatever the payload, an event with an ack callback
gets exactly one ack, ``{status: "ok", ...}`` or the documented ``{status: "error", error,
code}``; nothing a client sends can raise out of a handler or reach the client as a trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import socketio

from services.common.auth import Identity
from services.common.clock import now_ms
from services.common.crypto import Cipher
from services.common.errors import TEXTS, ChatError, Code, Unavailable
from services.common.ids import IdGenerator, is_valid_id
from services.common.model import (
    Message,
    Receipt,
    parse_join,
    parse_new_message,
    parse_read,
    parse_room_id,
)
from services.common.settings import Settings
from services.gateway.dedupe import Deduper
from services.presence import metrics as presence_metrics
from services.storage.events import MEMBER_JOINED, MEMBER_LEFT, member_event
from services.storage.files import StoredFile, new_file_id, parse_upload
from services.storage.presence import Session

from . import metrics
from .accept import AcceptPipeline
from .batching import Batcher, batch_room
from .bootstrap import Components
from .handlers import authenticate, guard, refuse
from .notifications import NotificationsNamespace
from .rooms import is_member_room, may_join, personal_room

NAMESPACE = "/chat"
log = logging.getLogger("parley.gateway.chat")


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
        self.batching: set[str] = set()  # sids that opted in to chat:batch
        self.batcher = Batcher(self._emit_to_room)
        # run (in the background) for every accepted socket: server_side.py's rejoin of the
        # user's stored memberships
        self.connected_hooks: list[Callable[[str, Identity], Coroutine[Any, Any, None]]] = []
        self._hook_tasks: set[asyncio.Task[None]] = set()
        sio.manager.divert(NAMESPACE, "chat:message", self.batching, self._batch)
        self.limits = settings.event_limits
        self.cipher = Cipher.from_settings(settings.encryption_keys, settings.encryption_active_key)
        self.pipeline = AcceptPipeline(
            self.ids,
            parts.log,
            parts.recent,
            Deduper(
                parts.claims,
                settings.client_msg_id_ttl_seconds,
                settings.kafka_send_timeout_seconds,
            ),
            self.cipher,
            self._deliver,
            settings.kafka_send_timeout_seconds,
        )
        sio.on("connect", self.connect, namespace=NAMESPACE)
        sio.on("disconnect", self.disconnect, namespace=NAMESPACE)
        for event, handler in {
            "room:join": self.room_join,
            "room:leave": self.room_leave,
            "chat:message": self.chat_message,
            "chat:typing": self.chat_typing,
            "chat:history": self.chat_history,
            "chat:read": self.chat_read,
            "chat:file": self.chat_file,
        }.items():
            sio.on(event, guard(event, handler, self.identities), namespace=NAMESPACE)

    # --- plumbing -------------------------------------------------------------------------

    async def _batch(self, room: Any, message: Any) -> None:
        """A chat:message diverted from this pod's batching sockets: to the batcher."""
        if isinstance(room, str) and isinstance(message, dict):
            await self.batcher.add(room, message)

    async def _emit_to_room(self, event: str, data: Any, room: str) -> None:
        await self.sio.emit(event, data, room=room, namespace=NAMESPACE)

    def session(self, sid: str, identity: Identity) -> Session:
        return Session(identity.user_id, identity.username, sid, self.settings.pod_id)

    def joined(self, sid: str) -> list[str]:
        """Rooms this socket joined itself (not its sid room, personal room or derived ones)."""
        return [r for r in self.sio.rooms(sid, namespace=NAMESPACE) if is_member_room(r, sid)]

    def joined_count(self, sid: str) -> int:
        return len(self.joined(sid))

    def in_room(self, sid: str, room_id: str) -> bool:
        return room_id in self.sio.rooms(sid, namespace=NAMESPACE)

    async def require_member(self, sid: str, identity: Identity, room_id: str) -> None:
        """Membership is per user: any of the user's sockets, on any pod, joined the room."""
        if self.in_room(sid, room_id):
            return
        if not await self.is_member(identity.user_id, room_id):
            raise ChatError(Code.FORBIDDEN, f"not a member of {room_id}")

    async def is_member(self, user_id: str, room_id: str) -> bool:
        """A live socket of the user (any pod) joined the room, or a server-side join of the
        user is stored for it (``memberships.py``)."""
        if await self.parts.presence.is_member(user_id, room_id):
            return True
        return await self.parts.memberships.has(user_id, room_id)

    def record_member(self, kind: str, user_id: str, username: str, room_id: str, via: str) -> None:
        """``room.member_joined`` / ``-left`` on the event log (queued, never waits)."""
        self.parts.events.record(member_event(kind, room_id, user_id, username, via, now_ms()))

    async def _presence_list(self, user_id: str) -> list[Any]:
        if self.settings.presence_scope == "rooms":
            return await self.parts.presence.scoped_online(user_id)
        return await self.parts.presence.online_users()

    async def rate_limit(self, event: str, key: str) -> None:
        limit = self.limits.get((NAMESPACE, event))
        if limit is not None and not await self.parts.limiter.hit(
            f"{event}:{key}", limit, now_ms()
        ):
            metrics.RATE_LIMITED.labels(event).inc()
            raise ChatError(Code.RATE_LIMITED, f"{event} over {limit}")

    # --- lifecycle ------------------------------------------------------------------------

    async def connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        identity = await authenticate(auth, self.settings, self.parts.revocations)
        try:
            went_online = await self.parts.presence.connect(self.session(sid, identity), now_ms())
            online = await self._presence_list(identity.user_id)
        except Unavailable as exc:
            log.warning("presence unavailable at connect: %s", exc)
            raise refuse(TEXTS[Code.UNAVAILABLE], Code.UNAVAILABLE.value) from None
        self.identities[sid] = identity
        if isinstance(auth, dict) and auth.get("batch") is True:
            self.batching.add(sid)
        metrics.connected(NAMESPACE)
        await self.sio.enter_room(sid, personal_room(identity.user_id), namespace=NAMESPACE)
        await self.sio.emit(
            "presence:list", [u.to_wire() for u in online], to=sid, namespace=NAMESPACE
        )
        if went_online:
            presence_metrics.ANNOUNCEMENTS.labels("online").inc()
        for hook in self.connected_hooks:  # after the connect, never delaying it
            task = asyncio.create_task(hook(sid, identity))
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)

    async def disconnect(self, sid: str, reason: object = None) -> None:
        identity = self.identities.pop(sid, None)
        self.batching.discard(sid)
        if identity is None:
            return
        metrics.disconnected(NAMESPACE, reason)
        try:
            if await self.parts.presence.disconnect(self.session(sid, identity), now_ms()):
                presence_metrics.ANNOUNCEMENTS.labels("offline").inc()
        except Unavailable as exc:  # the reaper cleans this pod's sessions if it never recovers
            log.warning("presence unavailable at disconnect of sid=%s: %s", sid, exc)

    # --- events ---------------------------------------------------------------------------

    async def room_join(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        s = self.settings
        request = parse_join(payload, s.history_default_limit, s.history_max_limit)
        room_id = request.room_id
        if not may_join(identity, room_id):
            raise ChatError(Code.FORBIDDEN, f"may not join {room_id}")
        if room_id == personal_room(identity.user_id):
            return {"status": "ok", "roomId": room_id}
        await self.rate_limit("room:join", identity.user_id)
        already = self.in_room(sid, room_id)
        if not already and self.joined_count(sid) >= s.max_rooms_per_socket:
            raise ChatError(Code.TOO_MANY_ROOMS, f"{s.max_rooms_per_socket} rooms already")
        # a new member of the room (for the room.member_joined webhook): not on another
        # socket, not a stored server-side member
        new_member = not already and not await self.is_member(identity.user_id, room_id)
        # Subscribe first, then read history, so no message falls between the two; only
        # announce the join once the read worked (a failed join leaves no trace).
        await self.parts.presence.join_room(self.session(sid, identity), room_id)
        await self.sio.enter_room(sid, room_id, namespace=NAMESPACE)
        if sid in self.batching:  # local only: the batcher sends these sockets their batches
            await self.sio.enter_room(sid, batch_room(room_id), namespace=NAMESPACE)
        history: dict[str, Any] = {"roomId": room_id}
        try:
            if request.since is not None:
                messages, has_more = await self.parts.store.after(
                    room_id, request.since, s.resync_cap
                )
                history["hasMore"] = has_more
            else:
                messages = await self.parts.store.recent(room_id, request.limit)
            history["messages"] = self._readable(messages)
        except Exception:
            if not already:
                await self._leave_rooms(sid, identity, room_id, best_effort=True)
            raise
        if not already:
            joined = {"userId": identity.user_id, "username": identity.username, "roomId": room_id}
            await self.sio.emit(
                "room:user-joined", joined, room=room_id, skip_sid=sid, namespace=NAMESPACE
            )
        if new_member:
            self.record_member(
                MEMBER_JOINED, identity.user_id, identity.username, room_id, "socket"
            )
        await self.sio.emit("room:history", history, to=sid, namespace=NAMESPACE)
        if self.settings.presence_scope == "rooms":  # the list grows with the rooms joined
            online = await self.parts.presence.scoped_online(identity.user_id)
            await self.sio.emit(
                "presence:list", [u.to_wire() for u in online], to=sid, namespace=NAMESPACE
            )
        return {"status": "ok", "roomId": room_id}

    async def _leave_rooms(
        self, sid: str, identity: Identity, room_id: str, best_effort: bool = False
    ) -> None:
        """Leave the room and its delivery rooms; the membership record first, which raises
        ``Unavailable`` unless ``best_effort`` (a rollback must not hide the first error)."""
        try:
            await self.parts.presence.leave_room(self.session(sid, identity), room_id)
        except Unavailable:
            if not best_effort:
                raise
        for room in (room_id, batch_room(room_id)):
            await self.sio.leave_room(sid, room, namespace=NAMESPACE)

    async def room_leave(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        room_id = parse_room_id(payload.get("roomId") if isinstance(payload, dict) else payload)
        if room_id == personal_room(identity.user_id):
            return {"status": "ok", "roomId": room_id}
        # the user leaves: a stored server-side membership ends too (no rejoin on reconnect)
        unstored = await self.parts.memberships.remove(identity.user_id, room_id)
        if not self.in_room(sid, room_id):
            if unstored and not await self.parts.presence.is_member(identity.user_id, room_id):
                self.record_member(
                    MEMBER_LEFT, identity.user_id, identity.username, room_id, "socket"
                )
            return {"status": "ok", "roomId": room_id}
        await self._leave_rooms(sid, identity, room_id)
        left = {"userId": identity.user_id, "username": identity.username, "roomId": room_id}
        await self.sio.emit("room:user-left", left, room=room_id, namespace=NAMESPACE)
        if not await self.parts.presence.is_member(identity.user_id, room_id):
            self.record_member(MEMBER_LEFT, identity.user_id, identity.username, room_id, "socket")
        return {"status": "ok", "roomId": room_id}

    async def chat_message(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        request = parse_new_message(payload, self.settings.message_max_chars)
        await self.require_member(sid, identity, request.room_id)
        await self.rate_limit("chat:message", identity.user_id)
        accepted = await self.pipeline.accept(
            identity,
            request.room_id,
            request.text,
            reply_to=request.reply_to,
            client_msg_id=request.client_msg_id,
        )
        return {"status": "ok", "messageId": accepted.message_id}

    async def chat_file(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        s = self.settings
        upload = parse_upload(payload, s.file_max_bytes, s.file_allowed_types)
        await self.require_member(sid, identity, upload.room_id)
        await self.rate_limit("chat:file", identity.user_id)
        stored = StoredFile(
            new_file_id(),
            upload.room_id,
            identity.user_id,
            upload.name,
            upload.mime_type,
            len(upload.data),
        )
        sealed_bytes = self.cipher.seal_bytes(upload.data, stored.id)
        await self.parts.files.put(stored, sealed_bytes)  # bytes first, never through Kafka
        accepted = await self.pipeline.accept(
            identity, upload.room_id, "", attachment=stored.attachment()
        )
        return {
            "status": "ok",
            "messageId": accepted.message_id,
            "attachment": stored.attachment(),
        }

    async def _deliver(self, message: Message) -> None:
        """An accepted message to the room on every pod, to batching sockets, and to the
        notifications of mentioned users and DM partners."""
        # One emit to the room: every pod with members delivers it; sockets that opted in
        # to chat:batch get it through their pod's batcher (emit.py's diversion).
        await self._emit_to_room("chat:message", message.to_wire(), message.room_id)
        await self._notify(message)

    async def _notify(self, message: Message) -> None:
        """Mentions and DM notifications; the message is already accepted, so never fail."""
        try:
            await self.notifications.message_accepted(message)
        except Exception:
            log.exception("notifications for message %s failed", message.id)

    async def chat_typing(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ChatError(Code.INVALID_MESSAGE, "typing takes an object")
        room_id = parse_room_id(payload.get("roomId"))
        is_typing = payload.get("isTyping")
        if not isinstance(is_typing, bool):
            raise ChatError(Code.INVALID_MESSAGE, "isTyping must be a boolean")
        await self.require_member(sid, identity, room_id)
        await self.rate_limit("chat:typing", f"{identity.user_id}:{room_id}")
        typing = {
            "userId": identity.user_id,
            "username": identity.username,
            "roomId": room_id,
            "isTyping": is_typing,
        }
        await self.sio.emit("chat:typing", typing, room=room_id, skip_sid=sid, namespace=NAMESPACE)
        return {"status": "ok"}

    async def chat_read(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        room_id, message_id = parse_read(payload)
        await self.require_member(sid, identity, room_id)
        await self.rate_limit("chat:read", identity.user_id)
        if not await self.parts.store.contains(room_id, message_id):
            raise ChatError(Code.NOT_FOUND, f"no message {message_id} in {room_id}")
        receipt = Receipt(room_id, message_id, identity.user_id, now_ms())
        await self.parts.recent.add_reader(receipt)
        await self.parts.log.append(receipt)
        read = {"userId": identity.user_id, "messageId": message_id, "roomId": room_id}
        await self.sio.emit("chat:read", read, room=room_id, skip_sid=sid, namespace=NAMESPACE)
        return {"status": "ok"}

    async def chat_history(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ChatError(Code.INVALID_MESSAGE, "history takes an object")
        room_id = parse_room_id(payload.get("roomId"))
        await self.require_member(sid, identity, room_id)
        await self.rate_limit("chat:history", identity.user_id)
        request = parse_join(
            {"roomId": room_id, "limit": payload.get("limit")},
            self.settings.history_default_limit,
            self.settings.history_max_limit,
        )
        before = payload.get("before")
        if before is not None and not is_valid_id(before):
            raise ChatError(Code.INVALID_MESSAGE, "before must be a message id")
        messages, has_more = await self.parts.store.before(room_id, before, request.limit)
        return {"status": "ok", "messages": self._readable(messages), "hasMore": has_more}

    def _readable(self, messages: list[Message]) -> list[dict[str, Any]]:
        """Stored messages as clients see them: text opened if it was sealed at rest."""
        out = []
        for m in messages:
            try:
                text = self.cipher.open_text(m.text, m.id)
            except ValueError as exc:  # a missing or wrong key is an operator error: say so
                log.error("cannot open message %s in %s: %s", m.id, m.room_id, exc)
                raise Unavailable(f"cannot decrypt {m.id}") from exc
            out.append(replace(m, text=text).to_wire())
        return out
