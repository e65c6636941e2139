"""The ``/notifications`` namespace: per-user pushes of ``notification {type, ...}``.

Handshake as on ``/chat`` (a JWT in ``auth.token``). Each socket joins ``user:{userId}`` and
``mention:{username}`` (casefolded), so a notification is one emit to a room and reaches the
user's sockets on every gateway through the Socket.IO manager — no lookup of who is where.

- ``mention``: a message accepted in a room names ``@username``; never to the sender, never
  from ``dm:`` or ``user:`` rooms (their text is private to their members).
- ``dm``: a message accepted in ``dm:{a}:{b}`` while the other participant has no socket
  anywhere that joined that room (presence membership).
- ``system``: an ``admin:broadcast`` to every socket of the namespace.

Delivery is best effort, like every live push: a failure is logged and counted, never raised
into ``/chat`` (whose ack is already decided).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import socketio

from services.common.auth import Identity
from services.common.clock import now_ms
from services.common.model import Message, iso_ms
from services.common.settings import Settings

from . import metrics
from .bootstrap import Components
from .handlers import authenticate

NAMESPACE = "/notifications"
MAX_MENTIONS = 20  # distinct names notified per message; more are ignored
MAX_NAME_CHARS = 100
EXCERPT_CHARS = 200
log = logging.getLogger("parley.gateway.notifications")

# "@" not preceded by a word character or another "@" (so e-mail addresses do not count),
# then word characters, dots and dashes; a trailing "." or "-" is punctuation, not the name.
_MENTION = re.compile(r"(?<![\w@])@([\w.\-]+)")


def mentioned_names(text: str, limit: int = MAX_MENTIONS) -> list[str]:
    """The distinct ``@names`` in ``text``, casefolded, in order of first appearance."""
    names: list[str] = []
    for match in _MENTION.finditer(text):
        name = match.group(1).rstrip(".-").casefold()
        if name and len(name) <= MAX_NAME_CHARS and name not in names:
            names.append(name)
            if len(names) == limit:
                break
    return names


def mention_room(username: str) -> str:
    return f"mention:{username.casefold()}"


def personal_room(user_id: str) -> str:
    return f"user:{user_id}"


def dm_recipient(room_id: str, sender_id: str) -> str | None:
    """The other participant of ``dm:{a}:{b}``; None for other rooms or a DM with oneself."""
    parts = room_id.split(":")
    if len(parts) != 3 or parts[0] != "dm" or sender_id not in parts[1:]:
        return None
    other = parts[2] if parts[1] == sender_id else parts[1]
    return None if other == sender_id else other


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def message_notification(kind: str, message: Message) -> dict[str, Any]:
    return {
        "type": kind,
        "roomId": message.room_id,
        "messageId": message.id,
        "from": {"userId": message.user_id, "username": message.username},
        "text": excerpt(message.text),
        "timestamp": iso_ms(message.created_ms),
    }


class NotificationsNamespace:
    def __init__(self, sio: socketio.AsyncServer, settings: Settings, parts: Components) -> None:
        self.sio = sio
        self.settings = settings
        self.parts = parts
        self.identities: dict[str, Identity] = {}  # sid -> identity, sockets of this pod
        sio.on("connect", self.connect, namespace=NAMESPACE)
        sio.on("disconnect", self.disconnect, namespace=NAMESPACE)

    async def connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        identity = await authenticate(auth, self.settings, self.parts.revocations)
        self.identities[sid] = identity
        metrics.connected(NAMESPACE)
        await self.sio.enter_room(sid, personal_room(identity.user_id), namespace=NAMESPACE)
        await self.sio.enter_room(sid, mention_room(identity.username), namespace=NAMESPACE)

    async def disconnect(self, sid: str, reason: object = None) -> None:
        if self.identities.pop(sid, None) is not None:
            metrics.disconnected(NAMESPACE, reason)

    async def message_accepted(self, message: Message) -> None:
        """Called by ``/chat`` after a message was acked ok: mentions and DM notifications.

        Never raises: the message is already accepted and delivered."""
        try:
            await self._notify(message)
        except Exception:
            metrics.NOTIFICATION_ERRORS.inc()
            log.exception("notifications for message %s failed", message.id)

    async def _notify(self, message: Message) -> None:
        recipient = dm_recipient(message.room_id, message.user_id)
        if recipient is not None:
            if not await self.parts.presence.is_member(recipient, message.room_id):
                await self._send(personal_room(recipient), message_notification("dm", message))
            return
        if message.room_id.startswith(("dm:", "user:")):
            return
        sender = message.username.casefold()
        for name in mentioned_names(message.text):
            if name != sender:
                await self._send(mention_room(name), message_notification("mention", message))

    async def system(self, text: str) -> None:
        """``notification {type: "system", text}`` to every socket, on every gateway."""
        body = {"type": "system", "text": text, "timestamp": iso_ms(now_ms())}
        await self.sio.emit("notification", body, namespace=NAMESPACE)
        metrics.NOTIFICATIONS.labels("system").inc()

    async def _send(self, room: str, body: dict[str, Any]) -> None:
        await self.sio.emit("notification", body, room=room, namespace=NAMESPACE)
        metrics.NOTIFICATIONS.labels(body["type"]).inc()
