"""The control bus: commands one gateway sends to every gateway (itself included).

``/admin`` publishes a command (``kick`` a user; the Server API: ``join``/``leave`` a room,
``disconnect``) and each gateway's subscriber acts on
its own sockets, because only the pod that holds a socket can see and close it. Redis pub/sub
carries the commands in cluster mode (channel ``<prefix>control``); the in-memory bus calls the
one local subscriber in single-node mode and in unit tests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from services.storage import metrics

log = logging.getLogger("parley.gateway.control")

KICK = "kick"
JOIN = "join"  # Server API: every socket of the user joins ``room_id``
LEAVE = "leave"  # ... leaves ``room_id``
DISCONNECT = "disconnect"  # ... is closed (no token revocation)
OPS = (KICK, JOIN, LEAVE, DISCONNECT)
ROOM_OPS = (JOIN, LEAVE)


@dataclass(frozen=True)
class Command:
    op: str  # one of OPS
    user_id: str
    origin: str = ""  # pod id of the publisher (logs only)
    revoke: bool = False  # kick: also revoke the tokens the user's sockets hold
    room_id: str = ""  # join / leave: the room

    def encode(self) -> str:
        body: dict[str, object] = {"op": self.op, "userId": self.user_id, "origin": self.origin}
        if self.revoke:
            body["revoke"] = True
        if self.room_id:
            body["roomId"] = self.room_id
        return json.dumps(body)

    @classmethod
    def decode(cls, raw: str | bytes) -> Command:
        """Parse a bus message; raises ``ValueError`` on anything malformed or unknown."""
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(body, dict) or body.get("op") not in OPS:
            raise ValueError("unknown command")
        user_id, origin = body.get("userId"), body.get("origin", "")
        revoke = body.get("revoke", False)
        room_id = body.get("roomId", "")
        if (
            not isinstance(user_id, str)
            or not user_id
            or not isinstance(origin, str)
            or not isinstance(revoke, bool)
            or not isinstance(room_id, str)
            or (body["op"] in ROOM_OPS) != bool(room_id)
        ):
            raise ValueError("bad command fields")
        return cls(body["op"], user_id, origin, revoke, room_id)


CommandHandler = Callable[[Command], Awaitable[None]]


class ControlBus(Protocol):
    """Fan-out of commands to every gateway.

    Guarantees: at most once, to the gateways subscribed when ``publish`` runs (a pod that is
    reconnecting to Redis misses the command: an admin repeats it); in publish order per
    publisher; the publishing pod receives its own commands. ``publish`` returns once the bus
    took the command — not once the handlers ran — and raises ``Unavailable`` if it could
    not. A handler that raises is logged and does not stop the subscriber.
    """

    async def start(self, on_command: CommandHandler) -> None:
        """Subscribe ``on_command``; returns once subscribed (or retrying in the background)."""
        ...

    async def publish(self, command: Command) -> int:
        """Send ``command``; returns how many gateways were subscribed to receive it."""
        ...

    async def close(self) -> None: ...


async def dispatch(on_command: CommandHandler, command: Command) -> None:
    try:
        await on_command(command)
        metrics.CONTROL_COMMANDS.labels(command.op, "ok").inc()
    except Exception:
        metrics.CONTROL_COMMANDS.labels(command.op, "error").inc()
        log.exception("control command %s for user %s failed", command.op, command.user_id)


class MemoryControlBus:
    """The single-node bus: ``publish`` runs the local handler before returning."""

    def __init__(self) -> None:
        self._handler: CommandHandler | None = None

    async def start(self, on_command: CommandHandler) -> None:
        self._handler = on_command

    async def publish(self, command: Command) -> int:
        if self._handler is None:
            return 0
        await dispatch(self._handler, command)
        return 1

    async def close(self) -> None:
        self._handler = None
