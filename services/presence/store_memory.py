"""In-memory presence: the single-node mode's store and the unit-test fake."""

from __future__ import annotations

from .ports import OnlineUser, Session, UserPresence


class MemoryPresenceStore:
    def __init__(self) -> None:
        self._sessions: dict[str, dict[str, Session]] = {}  # user -> sid -> session
        self._pods: dict[str, int] = {}  # pod -> last heartbeat ms
        self._last_seen: dict[str, int] = {}
        self._rooms: dict[str, set[str]] = {}  # sid -> rooms joined

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def connect(self, session: Session, now_ms: int) -> bool:
        sessions = self._sessions.setdefault(session.user_id, {})
        first = not sessions
        sessions[session.sid] = session
        self._pods.setdefault(session.pod_id, now_ms)
        return first

    async def disconnect(self, session: Session, now_ms: int) -> bool:
        sessions = self._sessions.get(session.user_id)
        self._rooms.pop(session.sid, None)
        if not sessions or sessions.pop(session.sid, None) is None:
            return False
        if sessions:
            return False
        del self._sessions[session.user_id]
        self._last_seen[session.user_id] = now_ms
        return True

    async def online_users(self) -> list[OnlineUser]:
        return [
            OnlineUser(uid, next(iter(s.values())).username) for uid, s in self._sessions.items()
        ]

    async def user(self, user_id: str) -> UserPresence:
        sessions = self._sessions.get(user_id, {})
        devices = [{"sid": s.sid, "pod": s.pod_id, "device": s.device} for s in sessions.values()]
        return UserPresence(user_id, bool(sessions), devices, self._last_seen.get(user_id))

    async def heartbeat(self, pod_id: str, now_ms: int) -> None:
        self._pods[pod_id] = now_ms

    async def dead_pods(self, now_ms: int, ttl_ms: int) -> list[str]:
        return [pod for pod, seen in self._pods.items() if seen < now_ms - ttl_ms]

    async def reap_pod(self, pod_id: str, now_ms: int) -> list[OnlineUser]:
        gone = []
        for sessions in list(self._sessions.values()):
            for s in [s for s in sessions.values() if s.pod_id == pod_id]:
                if await self.disconnect(s, now_ms):
                    gone.append(OnlineUser(s.user_id, s.username))
        self._pods.pop(pod_id, None)
        return gone

    async def join_room(self, session: Session, room_id: str) -> None:
        self._rooms.setdefault(session.sid, set()).add(room_id)

    async def leave_room(self, session: Session, room_id: str) -> None:
        self._rooms.get(session.sid, set()).discard(room_id)

    async def is_member(self, user_id: str, room_id: str) -> bool:
        return any(room_id in self._rooms.get(sid, ()) for sid in self._sessions.get(user_id, {}))
