"""The ``/admin`` namespace: ``admin:stats``, ``admin:kick``, ``admin:broadcast``.

Only tokens with ``role: "admin"`` connect (others get ``connect_error`` "Forbidden", code
``forbidden``). Every event with an ack callback gets exactly one ack, whatever the payload:
``{status: "ok", ...}`` or ``{status: "error", error, code}``.

Cluster-wide behaviour, since no gateway sees another's sockets:
- stats: every gateway writes a report of its own sockets and chat rooms to the stats board
  every ``PARLEY_ADMIN_STATS_SECONDS`` (TTL 3x; see ``stats``); ``admin:stats`` refreshes this
  pod's report, then adds up the live ones; ``users`` comes from presence.
- kick: published on the control bus (``control``); each gateway, this one included,
  disconnects its own sockets of the user in every namespace (they all sit in ``user:{id}``).
- broadcast: one emit to ``/notifications``, which the Socket.IO manager fans out to every pod.

Also owns the lifecycle of the control bus subscription, the stats reporter and the Socket.IO
Admin UI instrumentation (``admin_ui``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import socketio

from services.common.auth import Identity, is_valid_subject
from services.common.clock import now_ms
from services.common.errors import ChatError, Code
from services.common.model import is_text
from services.common.settings import Settings
from services.storage.control import KICK, Command, CommandHandler, ControlBus
from services.storage.presence import PresenceLookup
from services.storage.ratelimit import RateLimiter
from services.storage.revocations import Revocations
from services.storage.stats import PodReport, StatsBoard, aggregate, chat_rooms

from . import admin_ui, metrics
from .batching import batch_room
from .handlers import Handler, authenticate, guard
from .notifications import NotificationsNamespace


class AdminParts(Protocol):
    """What ``/admin`` uses of the components (any object with these attributes)."""

    @property
    def control(self) -> ControlBus: ...

    @property
    def stats(self) -> StatsBoard: ...

    @property
    def presence(self) -> PresenceLookup: ...

    @property
    def limiter(self) -> RateLimiter: ...

    @property
    def revocations(self) -> Revocations: ...


NAMESPACE = "/admin"
CHAT_NAMESPACE = "/chat"
MAX_USER_ID_CHARS = 200
log = logging.getLogger("parley.gateway.admin")


def parse_kick(payload: object) -> tuple[str, bool]:
    """``{userId, revoke?}``: a user id (the rule tokens follow; numbers allowed), and whether
    the tokens of the user's sockets are revoked too."""
    if not isinstance(payload, dict):
        raise ChatError(Code.INVALID_MESSAGE, "admin:kick takes {userId}")
    user_id = payload.get("userId")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not is_valid_subject(user_id):
        raise ChatError(Code.INVALID_MESSAGE, "userId must be a user id")
    revoke = payload.get("revoke", False)
    if not isinstance(revoke, bool):
        raise ChatError(Code.INVALID_MESSAGE, "revoke must be a boolean")
    return user_id, revoke


def parse_broadcast(payload: object, max_chars: int) -> str:
    if not isinstance(payload, dict) or not is_text(payload.get("text")):
        raise ChatError(Code.INVALID_MESSAGE, "admin:broadcast takes {text}")
    text = str(payload["text"]).strip()
    if not text or len(text) > max_chars:
        raise ChatError(Code.INVALID_MESSAGE, "text must be 1..max chars after trimming")
    return text


def parse_stats(payload: object) -> None:
    if payload is not None and not isinstance(payload, dict):
        raise ChatError(Code.INVALID_MESSAGE, "admin:stats takes no payload or an object")


class AdminNamespace:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        settings: Settings,
        parts: AdminParts,
        notifications: NotificationsNamespace,
        identity_tables: Sequence[Mapping[str, Identity]],
    ) -> None:
        self.sio = sio
        self.settings = settings
        self.parts = parts
        self.notifications = notifications
        self.identity_tables = identity_tables  # sid -> identity of this pod's other namespaces
        self.identities: dict[str, Identity] = {}  # sid -> identity, sockets of this pod
        self.limits = {
            event: limit
            for (ns, event), limit in self.settings.event_limits.items()
            if ns == NAMESPACE
        }
        self._reporter: asyncio.Task[None] | None = None
        # other control-bus ops (the Server API's join/leave/disconnect: server_side.py)
        self.command_handlers: dict[str, CommandHandler] = {}
        self.sio.on("connect", self.connect, namespace=NAMESPACE)
        self.sio.on("disconnect", self.disconnect, namespace=NAMESPACE)
        for event, handler in {
            "admin:stats": self.stats,
            "admin:kick": self.kick,
            "admin:broadcast": self.broadcast,
        }.items():
            self.sio.on(
                event,
                guard(event, self._limited(event, handler), self.identities),
                namespace=NAMESPACE,
            )
        self.ui = admin_ui.instrument(self.sio, self.settings)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to the control bus and start reporting this pod's stats."""
        await self.parts.control.start(self.on_command)
        self._reporter = asyncio.create_task(self._report_forever(), name="admin-stats")

    async def stop(self) -> None:
        """Stop reporting and withdraw this pod's report, leave the bus, stop the Admin UI."""
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
        try:
            await self.parts.stats.remove(self.settings.pod_id)
        except Exception as exc:  # it expires with its TTL anyway
            log.warning("could not withdraw this pod's stats report: %s", exc)
        await self.parts.control.close()
        if self.ui is not None:
            try:  # its loop wakes every 2 s to notice the stop
                await asyncio.wait_for(self.ui.shutdown(), 5)
            except Exception as exc:
                log.warning("Admin UI instrumentation did not stop cleanly: %r", exc)

    async def _report_forever(self) -> None:
        while True:
            try:
                await self.report()
            except Exception as exc:  # Redis down: the report expires, stats show one pod less
                metrics.STATS_REPORT_ERRORS.inc()
                log.warning("stats report failed: %s", exc)
            await asyncio.sleep(self.settings.admin_stats_seconds)

    def local_report(self) -> PodReport:
        """This pod's sockets per namespace and its chat rooms (the manager's local view)."""
        manager = self.sio.manager
        connections: dict[str, int] = {}
        for ns in list(manager.get_namespaces()):
            if ns != self.settings.admin_ui_namespace:
                connections[ns] = sum(1 for _ in manager.get_participants(ns, None))
        chat = manager.rooms.get(CHAT_NAMESPACE, {})
        sids = (sid for sid, _ in manager.get_participants(CHAT_NAMESPACE, None))
        rooms = chat_rooms(list(chat), sids, derived=(batch_room,))
        return PodReport(self.settings.pod_id, connections, rooms, now_ms())

    async def report(self) -> None:
        ttl_ms = int(self.settings.admin_stats_seconds * 3000)
        await self.parts.stats.put(self.local_report(), ttl_ms)

    async def on_command(self, command: Command) -> None:
        if command.op == KICK:
            if command.revoke:
                await self.revoke_local(command.user_id)
            kicked = await self.disconnect_local(command.user_id)
            if kicked:
                log.info(
                    "kicked %d sockets of user %s (from %s)",
                    kicked,
                    command.user_id,
                    command.origin,
                )
        elif (handler := self.command_handlers.get(command.op)) is not None:
            await handler(command)

    async def revoke_local(self, user_id: str) -> None:
        """Deny the tokens this pod's sockets of ``user_id`` connected with, until they expire."""
        held = {
            (identity.jti, identity.exp)
            for table in (*self.identity_tables, self.identities)
            for identity in list(table.values())
            if identity.user_id == user_id and identity.jti is not None
        }
        for jti, exp in held:
            try:
                await self.parts.revocations.add(jti, exp)
            except Exception as exc:  # still kick; the token lives until exp
                log.error("could not revoke a token of user %s: %s", user_id, exc)
        if held:
            log.info("revoked %d tokens of user %s", len(held), user_id)

    async def disconnect_local(self, user_id: str) -> int:
        """Disconnect this pod's sockets of ``user_id`` in every namespace."""
        manager = self.sio.manager
        kicked = 0
        for ns in list(manager.get_namespaces()):
            for sid, _ in list(manager.get_participants(ns, f"user:{user_id}")):
                await self.sio.disconnect(sid, namespace=ns, ignore_queue=True)
                kicked += 1
        metrics.KICKED_SOCKETS.inc(kicked)
        return kicked

    # --- handshake ------------------------------------------------------------------------

    async def connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        identity = await authenticate(auth, self.settings, self.parts.revocations, admin_only=True)
        self.identities[sid] = identity
        metrics.connected(NAMESPACE)
        await self.sio.enter_room(sid, f"user:{identity.user_id}", namespace=NAMESPACE)

    async def disconnect(self, sid: str, reason: object = None) -> None:
        if self.identities.pop(sid, None) is not None:
            metrics.disconnected(NAMESPACE, reason)

    # --- events ---------------------------------------------------------------------------

    def _limited(self, event: str, handler: Handler) -> Handler:
        """``handler`` behind the per-admin rate limit configured for ``event``."""

        async def limited(sid: str, identity: Identity, payload: object) -> Any:
            limit = self.limits.get(event)
            if limit is not None and not await self.parts.limiter.hit(
                f"admin:{event}:{identity.user_id}", limit, now_ms()
            ):
                raise ChatError(Code.RATE_LIMITED)
            return await handler(sid, identity, payload)

        return limited

    async def stats(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        parse_stats(payload)
        await self.report()  # this pod's numbers are always current
        totals = aggregate(await self.parts.stats.live(now_ms()))
        users = await self.parts.presence.online_users()
        return {
            "status": "ok",
            "connections": totals.connections,
            "users": len(users),
            "rooms": totals.rooms,
            "gateways": totals.gateways,
            "namespaces": totals.namespaces,
        }

    async def kick(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        user_id, revoke = parse_kick(payload)
        log.info("admin %s kicks user %s (revoke=%s)", identity.user_id, user_id, revoke)
        command = Command(KICK, user_id, self.settings.pod_id, revoke=revoke)
        reached = await self.parts.control.publish(command)
        return {"status": "ok", "userId": user_id, "gateways": reached}

    async def broadcast(self, sid: str, identity: Identity, payload: object) -> dict[str, Any]:
        text = parse_broadcast(payload, self.settings.message_max_chars)
        log.info("admin %s broadcasts a system notification", identity.user_id)
        await self.notifications.system(text)
        return {"status": "ok"}
