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

from dataclasses import dataclass
from typing import Protocol


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
class UserPresence:
    user_id: str
    online: bool
    devices: list[dict[str, str]]
    last_seen_ms: int | None


class PresenceStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def connect(self, session: Session, now_ms: int, quiet: bool = False) -> bool:
        """Add a session; ``quiet`` re-registers without announcing (after a state loss)."""
        ...

    async def disconnect(self, session: Session, now_ms: int) -> bool: ...

    async def sweep_pending(self, now_ms: int) -> list[OnlineUser]: ...

    async def counts(self) -> tuple[int, int]:
        """``(online users, live sessions)``."""
        ...

    async def pods(self) -> dict[str, int]: ...

    async def online_users(self) -> list[OnlineUser]: ...

    async def user(self, user_id: str) -> UserPresence: ...

    async def heartbeat(self, pod_id: str, now_ms: int) -> tuple[str, bool]:
        """Mark the pod alive. Returns the epoch of the stored state (it changes when the state
        was lost) and whether the pod was still registered (False after it was reaped)."""
        ...

    async def dead_pods(self, now_ms: int, ttl_ms: int) -> list[str]: ...

    async def reap_pod(self, pod_id: str, now_ms: int) -> list[OnlineUser]: ...

    async def healthy(self) -> bool: ...

    async def join_room(self, session: Session, room_id: str, quiet: bool = False) -> None: ...

    async def leave_room(self, session: Session, room_id: str) -> None: ...

    async def is_member(self, user_id: str, room_id: str) -> bool: ...

    async def scoped_online(self, user_id: str) -> list[OnlineUser]:
        """Online users sharing a room with any session of ``user_id`` (and the user)."""
        ...
