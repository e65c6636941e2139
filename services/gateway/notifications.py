"""The ``/notifications`` namespace (filled in by the notifications work)."""

from __future__ import annotations

import socketio

from services.common.model import Message
from services.common.settings import Settings

from .bootstrap import Components

NAMESPACE = "/notifications"


class NotificationsNamespace:
    def __init__(self, sio: socketio.AsyncServer, settings: Settings, parts: Components) -> None:
        self.sio = sio
        self.settings = settings
        self.parts = parts

    async def message_accepted(self, message: Message) -> None:
        """Called by ``/chat`` after a message was acked ok: mentions and DM notifications."""
        return None
