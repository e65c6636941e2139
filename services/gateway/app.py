"""The gateway ASGI application: Socket.IO at ``/socket.io`` plus the HTTP probes.

Nothing connects at import: ``create_app`` wires components and the lifespan starts them.
Shutdown order (matches Kubernetes: SIGTERM after ``preStop``, within the grace period): the
drain (``drain.py``: not ready at once, keep serving, then move clients away in batches), then
stop heart-beating, end this pod's remaining presence sessions as ordinary disconnects (grace
period respected), then close the backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import socketio
from starlette.applications import Starlette
from starlette.middleware import Middleware

from services.common.settings import Settings
from services.common.web import health_routes
from services.storage.presence import MemoryPresenceStore

from . import metrics, wire_json
from .admin import AdminNamespace
from .admin_ui import ui_routes
from .auth_http import auth_routes
from .bootstrap import Components, build
from .chat import ChatNamespace, now_ms
from .drain import Drain, DrainGate
from .files_http import file_routes
from .notifications import NotificationsNamespace
from .sio_server import ParleyServer

log = logging.getLogger("parley.gateway")
# Cassandra down costs history, registration and files, but chat still flows (Kafka takes the
# messages): such a gateway stays in rotation and says "degraded".
OPTIONAL_CHECKS = frozenset({"store", "users"})


class Gateway:
    def __init__(self, settings: Settings, parts: Components | None = None) -> None:
        self.settings = settings
        self.parts = parts or build(settings)
        origins = settings.cors_origin_list
        # room for one chat:file at the cap, base64-encoded over long-polling
        frame_cap = settings.file_max_bytes * 4 // 3 + 64 * 1024
        served = ["/chat", "/notifications", "/admin"]
        if settings.admin_ui_password:
            served.append(settings.admin_ui_namespace)
        self.sio = ParleyServer(
            served_namespaces=served,
            max_buffered=frame_cap,
            async_mode="asgi",
            json=wire_json,
            max_http_buffer_size=frame_cap,
            client_manager=self.parts.manager,
            # None: only the gateway's own origin (the web client it serves)
            cors_allowed_origins="*" if origins == ["*"] else (origins or None),
            cors_credentials=settings.cors_credentials,
            ping_interval=25,
            ping_timeout=20,
        )
        self.notifications = NotificationsNamespace(self.sio, settings, self.parts)
        self.chat = ChatNamespace(self.sio, settings, self.parts, self.notifications)
        self.admin = AdminNamespace(self)
        self.drain = Drain(self.sio, settings.drain_seconds, settings.drain_disconnect_seconds)
        checks = {
            "draining": self.drain.ready,
            "log": self.parts.log.healthy,
            "store": self.parts.store.healthy,
            "presence": self.parts.presence.healthy,
            "users": self.parts.users.healthy,
        }
        if hasattr(self.parts.manager, "healthy"):  # cluster mode: Redis fan-out subscribed
            checks["fanout"] = self.parts.manager.healthy
        self.http = Starlette(
            routes=health_routes(
                checks, optional=OPTIONAL_CHECKS, metrics_port=settings.metrics_port
            )
            + auth_routes(self)
            + file_routes(self)
            + ui_routes(settings),
            lifespan=self._lifespan,
            middleware=[Middleware(metrics.HttpMetrics)],
        )
        self.asgi = DrainGate(socketio.ASGIApp(self.sio, other_asgi_app=self.http), self.drain)
        metrics.watch(self.sio)  # parley_gateway_connections by namespace and transport
        self._heartbeat: asyncio.Task | None = None
        if isinstance(self.parts.presence, MemoryPresenceStore):
            self.parts.presence.bind(self.sio.emit)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.parts.start()
        if not self.sio.manager_initialized:  # listen to the fan-out now, not at first client
            self.sio.manager_initialized = True
            self.sio.manager.initialize()
        self._heartbeat = asyncio.create_task(self._beat(), name="presence-heartbeat")
        await self.admin.start()
        log.info(
            "gateway %s ready on http://%s:%d",
            self.settings.pod_id,
            self.settings.host,
            self.settings.port,
        )
        try:
            yield
        finally:
            await self.shutdown()

    async def _beat(self) -> None:
        """Heart-beat this pod; re-register its sessions if the presence state was lost (Redis
        restarted empty: a new epoch). In single-node mode there is no presence service, so
        the gateway also ends expired grace periods itself."""
        epoch: str | None = None
        next_beat = 0.0
        while True:
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.settings.presence_heartbeat_seconds
                    current, known = await self.parts.presence.heartbeat(
                        self.settings.pod_id, now_ms()
                    )
                    if epoch is not None and current != epoch:  # Redis lost everything
                        await self._reregister(announce=False)
                    elif epoch is not None and not known:  # we were reaped (a long stall)
                        await self._reregister(announce=True)
                    epoch = current
                if self.settings.single_node:
                    await self.parts.presence.sweep_pending(now_ms())
            except Exception as exc:  # keep beating; the reaper's TTL covers long outages
                log.warning("presence heartbeat failed: %s", exc)
            await asyncio.sleep(
                min(self.settings.presence_sweep_seconds, self.settings.presence_heartbeat_seconds)
            )

    async def _reregister(self, announce: bool) -> None:
        """Put this pod's sessions and room memberships back. After a Redis state loss nobody
        is announced (clients never saw them leave); after this pod was reaped, its users were
        announced offline, so they are announced online again."""
        sessions = list(self.chat.identities.items())
        log.warning("presence lost this pod's sessions; re-registering %d", len(sessions))
        for sid, identity in sessions:
            session = self.chat.session(sid, identity)
            await self.parts.presence.connect(session, now_ms(), quiet=not announce)
            for room in self.sio.rooms(sid, namespace="/chat"):
                if room != sid and not room.startswith("user:") and "#" not in room:
                    await self.parts.presence.join_room(session, room, quiet=True)

    async def shutdown(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        await self.admin.stop()
        try:
            # Sessions still here end like any disconnect: a user who reconnects to another
            # pod within the grace period is never announced offline (a rolling restart does
            # not flap presence). Then whatever is left of this pod is cleared.
            for sid, identity in list(self.chat.identities.items()):
                await self.parts.presence.disconnect(self.chat.session(sid, identity), now_ms())
            await self.parts.presence.reap_pod(self.settings.pod_id, now_ms())
        except Exception as exc:
            log.warning("could not clear this pod's presence at shutdown: %s", exc)
        await self.parts.close()


def create_app(settings: Settings | None = None) -> DrainGate:
    settings = settings or Settings.from_env()
    settings.require_strong_secret()
    return Gateway(settings).asgi
