"""The start and stop order of everything a gateway runs — the one place that owns it.

Start: the backends (each retries in the background if it is down), the Socket.IO manager's
fan-out listener (now, not at the first client), the control bus and the stats reporter of
``/admin``, the presence heartbeat.

Stop (after the drain, see ``drain.py``; matches Kubernetes: SIGTERM after ``preStop``, within
the grace period): the heartbeat, ``/admin``'s reporter and bus, this pod's remaining presence
sessions (ended as ordinary disconnects, so the grace period applies), the batcher's windows,
and last the backends.
"""

from __future__ import annotations

import logging

import socketio

from services.common.settings import Settings

from .admin import AdminNamespace
from .batching import Batcher
from .bootstrap import Components
from .heartbeat import PodHeartbeat

log = logging.getLogger("parley.gateway")


class Runtime:
    def __init__(
        self,
        settings: Settings,
        parts: Components,
        sio: socketio.AsyncServer,
        admin: AdminNamespace,
        heartbeat: PodHeartbeat,
        batcher: Batcher,
    ) -> None:
        self.settings = settings
        self.parts = parts
        self.sio = sio
        self.admin = admin
        self.heartbeat = heartbeat
        self.batcher = batcher

    async def start(self) -> None:
        await self.parts.start()
        if not self.sio.manager_initialized:
            self.sio.manager_initialized = True
            self.sio.manager.initialize()
        await self.admin.start()
        self.heartbeat.start()
        s = self.settings
        log.info("gateway %s ready on http://%s:%d", s.pod_id, s.host, s.port)

    async def stop(self) -> None:
        await self.heartbeat.stop()
        await self.admin.stop()
        try:
            await self.heartbeat.end_sessions()
        except Exception as exc:
            log.warning("could not clear this pod's presence at shutdown: %s", exc)
        await self.batcher.close()
        await self.parts.close()
