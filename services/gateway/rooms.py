"""Room rules (pure): who may join which room, and room-name helpers."""

from __future__ import annotations

from services.common.auth import Identity
from services.common.model import RESERVED_ROOM_CHAR


def personal_room(user_id: str) -> str:
    return f"user:{user_id}"


def dm_members(room_id: str) -> tuple[str, str] | None:
    """The two users of a well-formed ``dm:{a}:{b}`` room (ids sorted), else None."""
    parts = room_id.split(":")
    if len(parts) != 3 or parts[0] != "dm" or not parts[1] or not parts[2]:
        return None
    if parts[1] > parts[2]:
        return None
    return parts[1], parts[2]


def may_join(identity: Identity, room_id: str) -> bool:
    """``user:{id}`` only for that user; ``dm:{a}:{b}`` only for a and b; others public."""
    if room_id.startswith("user:"):
        return room_id == personal_room(identity.user_id)
    if room_id.startswith("dm:"):
        members = dm_members(room_id)
        return members is not None and identity.user_id in members
    return True


def is_member_room(room: str, sid: str) -> bool:
    """A room a socket is in because it joined it: not its own sid room, not a personal
    ``user:`` room, not a derived ``<room>#...`` delivery room."""
    return room != sid and not room.startswith("user:") and RESERVED_ROOM_CHAR not in room
