"""The presence port: sessions per user across pods, and the transitions worth announcing.

Guarantees of every adapter:
- The store announces transitions itself, atomically with the state change: ``presence:online``
  when a user's first session appears (``connect`` returns True), ``presence:offline`` when the
  last one is gone. With a grace period, a last disconnect only marks the user pending;
  ``sweep_pending`` announces the offline once the grace ran out with no session back, and a
  reconnect within the grace announces nothing. Every call is atomic, so concurrent calls for
  one user from several pods never lose an update and each real transition is announced once,
  in order.
- Room membership is per user: ``is_member`` is True while any of the user's live sessions,
  on any pod, has joined the room; it ends with the session (disconnect or reap).
- A pod that stops heart-beating for ``ttl`` has its sessions removed by ``reap_pod`` (run by
  the presence service); the users it returns went offline with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Session:
    user_id: str
    username: str
    sid: str
    pod_id: str
    device: str = "unknown"

    @property
    def member(self) -> str:
        """How the pod's session set names this session."""
        return f"{self.user_id}\t{self.sid}"


@dataclass(frozen=True)
class OnlineUser:
    user_id: str
    username: str

    def to_wire(self) -> dict[str, str]:
        return {"userId": self.user_id, "username": self.username}


@dataclass(frozen=True)
class RoomMember:
    user_id: str
    username: str
    sockets: int  # the user's live sessions (any pod) that joined the room


@dataclass(frozen=True)
class UserPresence:
    user_id: str
    online: bool
    devices: list[dict[str, str]]
    last_seen_ms: int | None


class PresenceSessions(Protocol):
    """What a gateway does with its own sessions (one caller: the gateway)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def healthy(self) -> bool: ...

    async def connect(self, session: Session, now_ms: int, quiet: bool = False) -> bool:
        """Add a session; ``quiet`` re-registers without announcing (after a state loss)."""
        ...

    async def disconnect(self, session: Session, now_ms: int) -> bool: ...

    async def join_room(self, session: Session, room_id: str, quiet: bool = False) -> None: ...

    async def leave_room(self, session: Session, room_id: str) -> None: ...

    async def heartbeat(self, pod_id: str, now_ms: int) -> tuple[str, bool]:
        """Mark the pod alive. Returns the epoch of the stored state (it changes when the state
        was lost) and whether the pod was still registered (False after it was reaped)."""
        ...


class PresenceLookup(Protocol):
    """Who is online and who is in a room (gateways authorize with it; ``/admin`` and the
    presence service's HTTP API read it)."""

    async def is_member(self, user_id: str, room_id: str) -> bool: ...

    async def online_users(self) -> list[OnlineUser]: ...

    async def scoped_online(self, user_id: str) -> list[OnlineUser]:
        """Online users sharing a room with any session of ``user_id`` (and the user)."""
        ...

    async def user(self, user_id: str) -> UserPresence: ...

    async def room_members(self, room_id: str) -> list[RoomMember]:
        """Users with a live session in the room, on any pod, by user id."""
        ...

    async def counts(self) -> tuple[int, int]:
        """``(online users, live sessions)``."""
        ...


class PresenceSweeping(Protocol):
    """Ending what nobody ends by themselves: dead pods and expired grace periods (the
    presence service's leader; a single-node gateway for itself; a pod at shutdown)."""

    async def pods(self) -> dict[str, int]: ...

    async def dead_pods(self, now_ms: int, ttl_ms: int) -> list[str]: ...

    async def reap_pod(self, pod_id: str, now_ms: int) -> list[OnlineUser]: ...

    async def sweep_pending(self, now_ms: int) -> list[OnlineUser]: ...


class PresenceStore(PresenceSessions, PresenceLookup, PresenceSweeping, Protocol):
    """Every adapter implements all three ports; callers ask for the narrow one they use."""


Emit = Callable[..., Awaitable[Any]]


class MemoryPresenceStore:
    EPOCH = "memory"

    def __init__(self, grace_ms: int = 0, scope: str = "all") -> None:
        self._grace_ms = grace_ms
        self.scope = scope
        self._members: dict[str, set[str]] = {}  # room -> users with a session in it
        self._last_rooms: dict[str, set[str]] = {}  # user -> rooms their ended sessions left
        self._sessions: dict[str, dict[str, Session]] = {}  # user -> sid -> session
        self._online: dict[str, str] = {}  # announced users -> username
        self._pending: dict[str, int] = {}  # user -> offline deadline (grace)
        self._pods: dict[str, int] = {}  # pod -> last heartbeat ms
        self._last_seen: dict[str, int] = {}
        self._rooms: dict[str, set[str]] = {}  # sid -> rooms joined
        self._emit: Emit | None = None
        self.announced: list[tuple[str, str]] = []  # (event, user) for tests

    def bind(self, emit: Emit) -> None:
        """Where announcements go: ``emit(event, data, namespace=, skip_sid=)``."""
        self._emit = emit

    async def _announce(
        self, event: str, user: str, name: str, skip: str | None = None, room: str | None = None
    ) -> None:
        self.announced.append((event, user))
        if self._emit is not None:
            await self._emit(
                event,
                {"userId": user, "username": name},
                namespace="/chat",
                skip_sid=skip,
                room=room,
            )

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def connect(self, session: Session, now_ms: int, quiet: bool = False) -> bool:
        sessions = self._sessions.setdefault(session.user_id, {})
        first = not sessions
        sessions[session.sid] = session
        self._online[session.user_id] = session.username
        self._pods.setdefault(session.pod_id, now_ms)
        if not first or self._pending.pop(session.user_id, None) is not None:
            return False
        if not quiet and self.scope == "all":
            await self._announce("presence:online", session.user_id, session.username, session.sid)
        return True

    async def _offline(self, user: str, now_ms: int) -> OnlineUser:
        name = self._online.pop(user, user)
        self._pending.pop(user, None)
        self._last_seen[user] = now_ms
        rooms = self._last_rooms.pop(user, set())
        if self.scope == "rooms":
            for room in sorted(rooms):
                await self._announce("presence:offline", user, name, room=room)
        else:
            await self._announce("presence:offline", user, name)
        return OnlineUser(user, name)

    def _leave(self, session: Session, room_id: str) -> bool:
        """True when the user has no session left in the room."""
        self._rooms.get(session.sid, set()).discard(room_id)
        if any(
            room_id in self._rooms.get(sid, ()) for sid in self._sessions.get(session.user_id, {})
        ):
            return False
        self._members.get(room_id, set()).discard(session.user_id)
        return True

    async def _drop(self, session: Session, now_ms: int, grace_ms: int) -> int:
        for room in list(self._rooms.get(session.sid, ())):
            if self._leave(session, room) and self.scope == "rooms":
                self._last_rooms.setdefault(session.user_id, set()).add(room)
        self._rooms.pop(session.sid, None)
        sessions = self._sessions.get(session.user_id)
        if not sessions or sessions.pop(session.sid, None) is None:
            return 0
        if sessions:
            return 0
        del self._sessions[session.user_id]
        if grace_ms > 0:
            self._pending[session.user_id] = now_ms + grace_ms
            return 2
        await self._offline(session.user_id, now_ms)
        return 1

    async def disconnect(self, session: Session, now_ms: int) -> bool:
        return await self._drop(session, now_ms, self._grace_ms) == 1

    async def sweep_pending(self, now_ms: int) -> list[OnlineUser]:
        due = [u for u, deadline in self._pending.items() if deadline <= now_ms]
        return [await self._offline(u, now_ms) for u in due if u not in self._sessions]

    async def online_users(self) -> list[OnlineUser]:
        return [OnlineUser(uid, name) for uid, name in self._online.items()]

    async def counts(self) -> tuple[int, int]:
        return len(self._online), sum(len(s) for s in self._sessions.values())

    async def user(self, user_id: str) -> UserPresence:
        sessions = self._sessions.get(user_id, {})
        devices = [{"sid": s.sid, "pod": s.pod_id, "device": s.device} for s in sessions.values()]
        return UserPresence(user_id, bool(sessions), devices, self._last_seen.get(user_id))

    async def room_members(self, room_id: str) -> list[RoomMember]:
        out = []
        for user in sorted(self._members.get(room_id, set())):
            sids = self._sessions.get(user, {})
            joined = sum(1 for sid in sids if room_id in self._rooms.get(sid, ()))
            if joined:
                out.append(RoomMember(user, self._online.get(user, user), joined))
        return out

    async def heartbeat(self, pod_id: str, now_ms: int) -> tuple[str, bool]:
        known = pod_id in self._pods
        self._pods[pod_id] = now_ms
        return self.EPOCH, known

    async def pods(self) -> dict[str, int]:
        return dict(self._pods)

    async def dead_pods(self, now_ms: int, ttl_ms: int) -> list[str]:
        return [pod for pod, seen in self._pods.items() if seen < now_ms - ttl_ms]

    async def reap_pod(self, pod_id: str, now_ms: int) -> list[OnlineUser]:
        gone = []
        for sessions in list(self._sessions.values()):
            for s in [s for s in sessions.values() if s.pod_id == pod_id]:
                if await self._drop(s, now_ms, 0) == 1:
                    gone.append(OnlineUser(s.user_id, s.username))
        self._pods.pop(pod_id, None)
        return gone

    async def join_room(self, session: Session, room_id: str, quiet: bool = False) -> None:
        self._rooms.setdefault(session.sid, set()).add(room_id)
        returning = room_id in self._last_rooms.get(session.user_id, set())
        self._last_rooms.get(session.user_id, set()).discard(room_id)
        members = self._members.setdefault(room_id, set())
        first = session.user_id not in members
        members.add(session.user_id)
        if first and self.scope == "rooms" and not returning and not quiet:
            await self._announce(
                "presence:online", session.user_id, session.username, session.sid, room_id
            )

    async def leave_room(self, session: Session, room_id: str) -> None:
        self._leave(session, room_id)

    async def is_member(self, user_id: str, room_id: str) -> bool:
        return any(room_id in self._rooms.get(sid, ()) for sid in self._sessions.get(user_id, {}))

    async def scoped_online(self, user_id: str) -> list[OnlineUser]:
        rooms = set().union(
            *(self._rooms.get(sid, set()) for sid in self._sessions.get(user_id, {}))
        )
        users = set().union(*(self._members.get(r, set()) for r in rooms)) | {user_id}
        return [OnlineUser(u, self._online[u]) for u in sorted(users) if u in self._online]
