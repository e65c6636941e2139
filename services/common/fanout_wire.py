"""The fan-out wire between gateways, named once: channel names. A room's messages travel on
its own channel so that only pods with a member in the room receive them; the presence Lua
scripts publish room-scoped announcements on the same names."""

from __future__ import annotations


def room_channel(base: str, namespace: str, room: str) -> str:
    """The channel of one room: ``<base>#<namespace>#<room>`` (``#`` never occurs in a
    namespace or a room a client can name, so names cannot collide)."""
    return f"{base}#{namespace}#{room}"
