"""The presence port: sessions per user across pods, and the transitions worth announcing.

Guarantees of every adapter:
- ``connect`` returns True exactly when the user had no live session before (went online);
  ``disconnect`` returns True exactly when it removed the user's last session (went offline).
  Each is atomic, so concurrent calls for one user from several pods never lose an update
  and each real transition is reported once.
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

    async def connect(self, session: Session, now_ms: int) -> bool: ...

    async def disconnect(self, session: Session, now_ms: int) -> bool: ...

    async def online_users(self) -> list[OnlineUser]: ...

    async def user(self, user_id: str) -> UserPresence: ...

    async def heartbeat(self, pod_id: str, now_ms: int) -> None: ...

    async def dead_pods(self, now_ms: int, ttl_ms: int) -> list[str]: ...

    async def reap_pod(self, pod_id: str, now_ms: int) -> list[OnlineUser]: ...

    async def healthy(self) -> bool: ...

    async def join_room(self, session: Session, room_id: str) -> None: ...

    async def leave_room(self, session: Session, room_id: str) -> None: ...

    async def is_member(self, user_id: str, room_id: str) -> bool: ...
