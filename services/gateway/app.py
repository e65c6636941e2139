"""The gateway ASGI application: Socket.IO at ``/socket.io`` plus the HTTP probes.

Wiring only: ``Gateway`` builds the namespaces and routes from the components and gives each
exactly what it uses; ``runtime.py`` owns the start/stop order; ``drain.py`` what happens
between SIGTERM and the stop. Nothing connects at import.
"""

from __future__ import annotations

import contextlib
import logging
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
from .api_http import api_routes
from .auth_http import auth_routes
from .bootstrap import Components, build
from .chat import ChatNamespace
from .drain import Drain, DrainGate
from .files_http import file_routes
from .heartbeat import PodHeartbeat
from .notifications import NotificationsNamespace
from .runtime import Runtime
from .server_side import ServerSide
from .sio_server import ParleyServer
from .webclient import webclient_routes

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
            ping_interval=settings.ping_interval_seconds,
            ping_timeout=settings.ping_timeout_seconds,
        )
        self.parts.manager.max_queued_frames = settings.slow_consumer_max_frames
        self.notifications = NotificationsNamespace(self.sio, settings, self.parts)
        self.chat = ChatNamespace(self.sio, settings, self.parts, self.notifications)
        self.admin = AdminNamespace(
            self.sio,
            settings,
            self.parts,
            self.notifications,
            identity_tables=[self.chat.identities, self.notifications.identities],
        )
        server_side = ServerSide(self.sio, settings, self.chat, self.admin)
        self.admin.command_handlers.update(server_side.handlers())  # Server API join/leave/...
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
            + auth_routes(settings, self.parts.users, self.parts.limiter)
            + file_routes(
                settings,
                self.parts.files,
                self.parts.presence,
                self.chat.cipher,
                self.parts.revocations,
            )
            + api_routes(settings, self.parts, self.sio, self.chat)
            + ui_routes(settings)
            + webclient_routes(settings),
            lifespan=self._lifespan,
            middleware=[Middleware(metrics.HttpMetrics)],
        )
        self.asgi = DrainGate(socketio.ASGIApp(self.sio, other_asgi_app=self.http), self.drain)
        metrics.watch(self.sio)  # parley_gateway_connections by namespace and transport
        if isinstance(self.parts.presence, MemoryPresenceStore):
            self.parts.presence.bind(self.sio.emit)
        heartbeat = PodHeartbeat(
            settings, self.parts.presence, self.chat.identities, self.chat.session, self.chat.joined
        )
        self.runtime = Runtime(
            settings, self.parts, self.sio, self.admin, heartbeat, self.chat.batcher
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.runtime.start()
        try:
            yield
        finally:
            await self.runtime.stop()


def create_app(settings: Settings | None = None) -> DrainGate:
    settings = settings or Settings.from_env()
    settings.require_strong_secret()
    return Gateway(settings).asgi
