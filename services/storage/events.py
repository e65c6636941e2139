"""The events port: presence and membership transitions recorded for the webhook worker.

A gateway (or the presence service) that performs a transition — it won the presence store's
online/offline transition, or it accepted a room join or leave — calls ``record``. The call
never waits and never fails: it puts the event in a bounded in-process queue that a background
task appends to Kafka (``<PARLEY_KAFKA_TOPIC>.events``, keyed by user for presence and by room
for membership, so each user's and each room's events keep their order). When the queue is full
or Kafka stays away past the retry budget, the event is dropped and counted
(``parley_event_log_records_total{outcome="dropped"}``). So the guarantee is at least once from
Kafka onward only: a process that dies between the transition and the append loses the events
still in its queue (a SIGKILL right after a connect, a Kafka outage longer than the budget).

Record body (JSON): ``{"id", "type", "at" (ms), "data"}``; ``id`` is unique per event, so a
redelivered record keeps its webhook delivery id. ``NoEventLog`` (single-node mode, where there
is no Kafka and no webhook worker) discards; ``MemoryEventLog`` keeps them for tests.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

PRESENCE_ONLINE = "presence.online"
PRESENCE_OFFLINE = "presence.offline"
MEMBER_JOINED = "room.member_joined"
MEMBER_LEFT = "room.member_left"
TYPES = frozenset({PRESENCE_ONLINE, PRESENCE_OFFLINE, MEMBER_JOINED, MEMBER_LEFT})
SUFFIX = ".events"


def events_topic(messages_topic: str) -> str:
    return messages_topic + SUFFIX


@dataclass(frozen=True)
class Event:
    type: str
    key: str  # the Kafka key: the user (presence) or the room (membership)
    at_ms: int
    data: dict[str, Any]
    id: str = field(default_factory=lambda: secrets.token_hex(12))

    def encode(self) -> bytes:
        body = {"id": self.id, "type": self.type, "at": self.at_ms, "data": self.data}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def decode_event(raw: bytes | None) -> Event | None:
    """The event of a record, or None for anything else (never raises)."""
    try:
        body = json.loads(raw or b"")
        kind, data, at, eid = body["type"], body["data"], body["at"], body["id"]
    except (ValueError, TypeError, KeyError):
        return None
    if kind not in TYPES or not isinstance(data, dict) or not isinstance(at, int):
        return None
    if not isinstance(eid, str) or not eid:
        return None
    key = str(data.get("roomId") or data.get("userId") or "")
    return Event(kind, key, at, data, eid)


def presence_event(kind: str, user_id: str, username: str, at_ms: int) -> Event:
    return Event(kind, user_id, at_ms, {"userId": user_id, "username": username})


def member_event(
    kind: str, room_id: str, user_id: str, username: str, via: str, at_ms: int
) -> Event:
    data = {"roomId": room_id, "userId": user_id, "username": username, "via": via}
    return Event(kind, room_id, at_ms, data)


class EventLog(Protocol):
    """Append transitions for the webhook worker, off the caller's path (see module doc)."""

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Flush what is queued (bounded), then stop."""
        ...

    async def healthy(self) -> bool: ...

    def record(self, event: Event) -> None:
        """Queue the event; never blocks, never raises (a full queue drops and counts)."""
        ...


class NoEventLog:
    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    def record(self, event: Event) -> None:
        return None


class MemoryEventLog(NoEventLog):
    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        self.events.append(event)
