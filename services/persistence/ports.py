"""Ports of the message pipeline: the durable log gateways append to, and the store.

Adapters: ``log_kafka`` (cluster), ``store_cassandra`` (cluster), ``store_sqlite`` (single-node
mode; it is both the log and the store), ``store_memory`` (unit tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.common.model import Message, Receipt, Record


class MessageLog(Protocol):
    """Where a gateway appends an accepted message before acking it.

    Guarantee: when ``append`` returns, the message is durable (Kafka: acknowledged by every
    in-sync replica; SQLite: committed) and will reach the store exactly once by id. On any
    failure it raises ``Unavailable`` and nothing may be acked. Order: appends of one room
    keep their order (one Kafka partition per room key).
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, record: Record) -> None: ...

    async def healthy(self) -> bool: ...


class MessageStore(Protocol):
    """Stored messages per room, read oldest-first.

    ``write`` is idempotent: the same id always lands on the same row, so redelivery never
    duplicates; so is ``write_receipts`` (a reader is a set member). Reads return messages
    sorted by id ascending, each with ``read_by`` = sender, then readers in the order stored.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, messages: Sequence[Message]) -> None: ...

    async def write_receipts(self, receipts: Sequence[Receipt]) -> None: ...

    async def recent(self, room_id: str, limit: int) -> list[Message]:
        """The newest ``limit`` messages of the room, oldest-first."""
        ...

    async def contains(self, room_id: str, message_id: str) -> bool:
        """True if the room has the message (a point read)."""
        ...

    async def after(self, room_id: str, since_id: str, cap: int) -> tuple[list[Message], bool]:
        """The first ``cap`` messages with id > ``since_id``; True if more remain."""
        ...

    async def before(
        self, room_id: str, before_id: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        """The newest ``limit`` messages with id < ``before_id``; True if older ones exist."""
        ...

    async def healthy(self) -> bool: ...
