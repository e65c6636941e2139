"""The stored-memberships port: room memberships a backend service set through the Server API
(``PUT /rooms/{room}/members/{user}``), kept while the user is offline.

A ``room:join`` of a socket lasts as long as the socket (the presence store holds it). A
server-side join is the user's, like a Centrifugo server-side subscription: it is stored here
until a ``DELETE`` of it or a ``room:leave`` by the user, and every socket the user connects
later is joined to the room by the gateway that accepts it (``server_side.py``), whose ACL
(``require_member``) also honours it. Guarantees of every adapter: ``add``/``remove`` are atomic
for both indexes (user → rooms, room → users); a read sees every completed write.
"""

from __future__ import annotations

from typing import Protocol


class Memberships(Protocol):
    async def add(self, user_id: str, username: str, room_id: str) -> bool:
        """Store the membership; True if it is new."""
        ...

    async def remove(self, user_id: str, room_id: str) -> bool:
        """Forget it; True if it existed."""
        ...

    async def has(self, user_id: str, room_id: str) -> bool: ...

    async def rooms(self, user_id: str) -> list[str]:
        """The user's stored rooms, sorted."""
        ...

    async def members(self, room_id: str) -> dict[str, str]:
        """The room's stored members: user id → username (as stored at the join)."""
        ...


class MemoryMemberships:
    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, str]] = {}  # room -> user -> username

    async def add(self, user_id: str, username: str, room_id: str) -> bool:
        users = self._rooms.setdefault(room_id, {})
        new = user_id not in users
        users[user_id] = username
        return new

    async def remove(self, user_id: str, room_id: str) -> bool:
        users = self._rooms.get(room_id, {})
        existed = users.pop(user_id, None) is not None
        if not users:
            self._rooms.pop(room_id, None)
        return existed

    async def has(self, user_id: str, room_id: str) -> bool:
        return user_id in self._rooms.get(room_id, {})

    async def rooms(self, user_id: str) -> list[str]:
        return sorted(r for r, users in self._rooms.items() if user_id in users)

    async def members(self, room_id: str) -> dict[str, str]:
        return dict(self._rooms.get(room_id, {}))
