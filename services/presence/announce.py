"""Announcing presence transitions to every client of ``/chat`` on every gateway."""

from __future__ import annotations

import socketio

from . import metrics
from .ports import OnlineUser

NAMESPACE = "/chat"


class Announcer:
    """Emits through a Socket.IO manager: a gateway's own, or a write-only Redis manager in
    the presence service (an external emitter that reaches every gateway's clients)."""

    def __init__(self, emit) -> None:
        self._emit = emit

    @classmethod
    def external(cls, redis_url: str, channel: str) -> Announcer:
        manager = socketio.AsyncRedisManager(redis_url, channel=channel, write_only=True)
        return cls(manager.emit)

    async def online(self, user: OnlineUser, skip_sid: str | None = None) -> None:
        metrics.ANNOUNCEMENTS.labels("online").inc()
        await self._emit("presence:online", user.to_wire(), namespace=NAMESPACE, skip_sid=skip_sid)

    async def offline(self, user: OnlineUser) -> None:
        metrics.ANNOUNCEMENTS.labels("offline").inc()
        await self._emit("presence:offline", user.to_wire(), namespace=NAMESPACE)
