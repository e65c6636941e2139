"""A presence store that also records its transitions on the event log (for webhooks).

It wraps any presence adapter and changes nothing about it: after a call that performed a
transition — ``connect`` returned True (this caller's session made the user online, and only
one concurrent caller wins that in the store's atomic script), ``disconnect`` returned True,
``reap_pod`` / ``sweep_pending`` returned users — it queues ``presence.online`` /
``presence.offline`` on the ``EventLog`` (never waiting for Kafka). Quiet re-registrations
after a presence state loss record nothing, as they announce nothing.
"""

from __future__ import annotations

from services.common.clock import now_ms as clock_ms

from .events import PRESENCE_OFFLINE, PRESENCE_ONLINE, EventLog, presence_event
from .presence import OnlineUser, PresenceStore, RoomMember, Session, UserPresence


class RecordingPresence:
    def __init__(self, inner: PresenceStore, events: EventLog) -> None:
        self.inner = inner
        self.events = events

    def _offline(self, users: list[OnlineUser], at_ms: int) -> list[OnlineUser]:
        for u in users:
            self.events.record(presence_event(PRESENCE_OFFLINE, u.user_id, u.username, at_ms))
        return users

    # --- transitions ------------------------------------------------------------------------

    async def connect(self, session: Session, now_ms: int, quiet: bool = False) -> bool:
        first = await self.inner.connect(session, now_ms, quiet)
        if first and not quiet:
            self.events.record(
                presence_event(PRESENCE_ONLINE, session.user_id, session.username, now_ms)
            )
        return first

    async def disconnect(self, session: Session, now_ms: int) -> bool:
        last = await self.inner.disconnect(session, now_ms)
        if last:
            self.events.record(
                presence_event(PRESENCE_OFFLINE, session.user_id, session.username, now_ms)
            )
        return last

    async def reap_pod(self, pod_id: str, now_ms: int) -> list[OnlineUser]:
        return self._offline(await self.inner.reap_pod(pod_id, now_ms), now_ms)

    async def sweep_pending(self, now_ms: int) -> list[OnlineUser]:
        return self._offline(await self.inner.sweep_pending(now_ms), clock_ms())

    # --- everything else, unchanged ---------------------------------------------------------

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def healthy(self) -> bool:
        return await self.inner.healthy()

    async def join_room(self, session: Session, room_id: str, quiet: bool = False) -> None:
        await self.inner.join_room(session, room_id, quiet)

    async def leave_room(self, session: Session, room_id: str) -> None:
        await self.inner.leave_room(session, room_id)

    async def heartbeat(self, pod_id: str, now_ms: int) -> tuple[str, bool]:
        return await self.inner.heartbeat(pod_id, now_ms)

    async def is_member(self, user_id: str, room_id: str) -> bool:
        return await self.inner.is_member(user_id, room_id)

    async def online_users(self) -> list[OnlineUser]:
        return await self.inner.online_users()

    async def scoped_online(self, user_id: str) -> list[OnlineUser]:
        return await self.inner.scoped_online(user_id)

    async def user(self, user_id: str) -> UserPresence:
        return await self.inner.user(user_id)

    async def room_members(self, room_id: str) -> list[RoomMember]:
        return await self.inner.room_members(room_id)

    async def counts(self) -> tuple[int, int]:
        return await self.inner.counts()

    async def pods(self) -> dict[str, int]:
        return await self.inner.pods()

    async def dead_pods(self, now_ms: int, ttl_ms: int) -> list[str]:
        return await self.inner.dead_pods(now_ms, ttl_ms)
