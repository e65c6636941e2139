"""This pod's heartbeat and its registry of live ``/chat`` sessions in presence.

Every ``PARLEY_PRESENCE_HEARTBEAT_SECONDS`` the pod stamps itself in presence; the answer says
whether the presence state is the one it registered with (an epoch) and whether the pod is
still known. If Redis lost everything (a new epoch) the pod puts its sessions and room
memberships back without announcing anyone (clients never saw them leave); if the pod was
reaped during a long stall (unknown), they are put back and announced online again. In
single-node mode there is no presence service, so the pod also ends expired grace periods.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping

from services.common.auth import Identity
from services.common.clock import now_ms
from services.common.settings import Settings
from services.storage.presence import PresenceStore, Session

log = logging.getLogger("parley.gateway.heartbeat")
SessionOf = Callable[[str, Identity], Session]
RoomsOf = Callable[[str], Iterable[str]]


class PodHeartbeat:
    def __init__(
        self,
        settings: Settings,
        presence: PresenceStore,
        identities: Mapping[str, Identity],
        session_of: SessionOf,
        rooms_of: RoomsOf,
    ) -> None:
        self.settings = settings
        self.presence = presence
        self.identities = identities  # sid -> identity of this pod's /chat sockets
        self.session_of = session_of
        self.rooms_of = rooms_of  # the member rooms of a sid (no personal or derived rooms)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="presence-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        s = self.settings
        epoch: str | None = None
        next_beat = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() >= next_beat:
                    next_beat = loop.time() + s.presence_heartbeat_seconds
                    current, known = await self.presence.heartbeat(s.pod_id, now_ms())
                    if epoch is not None and current != epoch:  # Redis lost everything
                        await self.reregister(announce=False)
                    elif epoch is not None and not known:  # we were reaped (a long stall)
                        await self.reregister(announce=True)
                    epoch = current
                if s.single_node:
                    await self.presence.sweep_pending(now_ms())
            except Exception as exc:  # keep beating; the reaper's TTL covers long outages
                log.warning("presence heartbeat failed: %s", exc)
            await asyncio.sleep(min(s.presence_sweep_seconds, s.presence_heartbeat_seconds))

    async def reregister(self, announce: bool) -> None:
        sessions = list(self.identities.items())
        log.warning("presence lost this pod's sessions; re-registering %d", len(sessions))
        for sid, identity in sessions:
            session = self.session_of(sid, identity)
            await self.presence.connect(session, now_ms(), quiet=not announce)
            for room in self.rooms_of(sid):
                await self.presence.join_room(session, room, quiet=True)

    async def end_sessions(self) -> None:
        """At shutdown: every session still here ends like any disconnect (the grace period
        applies: a user who reconnects elsewhere is not announced offline), then whatever is
        left of this pod is cleared."""
        for sid, identity in list(self.identities.items()):
            await self.presence.disconnect(self.session_of(sid, identity), now_ms())
        await self.presence.reap_pod(self.settings.pod_id, now_ms())
