"""Cassandra message store (cluster mode): idempotent writes, bucketed history reads.

Layout (migrations/0001): ``messages`` partitioned by ``(room_id, bucket)`` and clustered by
``message_id`` descending; ``room_buckets`` lists each room's buckets newest first so reads
walk only buckets that hold messages. A bucket is 10 days of message-id time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Sequence
from typing import Any

from cassandra.cluster import Session

from services.common.ids import timestamp_ms
from services.common.model import Message, Receipt
from services.common.settings import Settings
from services.storage import metrics
from services.storage.cassandra_io import CassandraAdapter

BUCKET_MS = 10 * 24 * 3600 * 1000
WRITE_CONCURRENCY = 64
_COLUMNS = (
    "message_id, room_id, user_id, username, body, created_at, reply_to, client_msg_id, attachment"
)


def bucket_of(message_id: str) -> int:
    return timestamp_ms(message_id) // BUCKET_MS


def _to_message(row: tuple[Any, ...]) -> Message:
    created: dt.datetime = row[5]
    created_ms = int(created.replace(tzinfo=dt.UTC).timestamp() * 1000) if created else 0
    return Message(
        id=row[0],
        room_id=row[1],
        user_id=row[2],
        username=row[3],
        text=row[4],
        created_ms=created_ms,
        reply_to=row[6],
        client_msg_id=row[7],
        attachment=json.loads(row[8]) if row[8] else None,
    )


class CassandraMessageStore(CassandraAdapter):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._known_buckets: set[tuple[str, int]] = set()

    async def _prepare(self, session: Session, ks: str) -> None:
        prepare = session.prepare
        self._insert = await asyncio.to_thread(
            prepare,
            f"INSERT INTO {ks}.messages (room_id, bucket, message_id, user_id, username, body, "
            "created_at, reply_to, client_msg_id, attachment) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        self._insert_bucket = await asyncio.to_thread(
            prepare, f"INSERT INTO {ks}.room_buckets (room_id, bucket) VALUES (?, ?)"
        )
        self._buckets = await asyncio.to_thread(
            prepare, f"SELECT bucket FROM {ks}.room_buckets WHERE room_id = ?"
        )
        base = f"SELECT {_COLUMNS} FROM {ks}.messages WHERE room_id = ? AND bucket = ?"
        self._newest = await asyncio.to_thread(prepare, base + " LIMIT ?")
        self._after = await asyncio.to_thread(
            prepare, base + " AND message_id > ? ORDER BY message_id ASC LIMIT ?"
        )
        self._before = await asyncio.to_thread(prepare, base + " AND message_id < ? LIMIT ?")
        self._one = await asyncio.to_thread(
            prepare,
            f"SELECT message_id FROM {ks}.messages WHERE room_id = ? AND bucket = ? "
            "AND message_id = ?",
        )
        self._insert_receipt = await asyncio.to_thread(
            prepare,
            f"INSERT INTO {ks}.read_receipts (room_id, bucket, message_id, user_id, read_at) "
            "VALUES (?, ?, ?, ?, ?)",
        )
        self._receipts = await asyncio.to_thread(
            prepare,
            f"SELECT message_id, user_id FROM {ks}.read_receipts WHERE room_id = ? AND bucket = ? "
            "AND message_id >= ? AND message_id <= ?",
        )

    async def write(self, messages: Sequence[Message]) -> None:
        """Store a batch; raises ``Unavailable`` unless every row was accepted."""
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def one(stmt: Any, params: Sequence[Any], table: str = "messages") -> None:
            async with gate:
                await self._write(table, stmt, params)

        new_buckets = {(m.room_id, bucket_of(m.id)) for m in messages} - self._known_buckets
        jobs = [one(self._insert_bucket, b, "room_buckets") for b in new_buckets]
        for m in messages:
            created = dt.datetime.fromtimestamp(m.created_ms / 1000, tz=dt.UTC)
            params = (
                m.room_id,
                bucket_of(m.id),
                m.id,
                m.user_id,
                m.username,
                m.text,
                created,
                m.reply_to,
                m.client_msg_id,
                json.dumps(m.attachment) if m.attachment else None,
            )
            jobs.append(one(self._insert, params))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        self._known_buckets |= new_buckets

    async def write_receipts(self, receipts: Sequence[Receipt]) -> None:
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def one(r: Receipt) -> None:
            read_at = dt.datetime.fromtimestamp(r.read_ms / 1000, tz=dt.UTC)
            async with gate:
                await self._write(
                    "read_receipts",
                    self._insert_receipt,
                    (r.room_id, bucket_of(r.message_id), r.message_id, r.user_id, read_at),
                )

        results = await asyncio.gather(*(one(r) for r in receipts), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _write(self, table: str, stmt: Any, params: Sequence[Any]) -> None:
        """One row write, counted, timed and its failure classified by table."""
        started = time.perf_counter()
        try:
            await self._q(stmt, params)
        except Exception as exc:
            metrics.CASSANDRA_WRITE_ERRORS.labels(table, metrics.write_error_kind(exc)).inc()
            raise
        finally:
            metrics.CASSANDRA_WRITE_SECONDS.labels(table).observe(time.perf_counter() - started)
        metrics.CASSANDRA_WRITES.labels(table).inc()

    async def _with_readers(self, room_id: str, messages: list[Message]) -> list[Message]:
        """Attach ``read_by``: one receipts slice per bucket the messages span."""
        by_bucket: dict[int, list[str]] = {}
        for m in messages:
            by_bucket.setdefault(bucket_of(m.id), []).append(m.id)
        slices = await asyncio.gather(
            *(
                self._q(self._receipts, (room_id, b, min(ids), max(ids)))
                for b, ids in by_bucket.items()
            )
        )
        readers: dict[str, list[str]] = {}
        for rows in slices:
            for message_id, user_id in rows:
                readers.setdefault(message_id, []).append(user_id)
        return [m.with_readers(readers.get(m.id, [])) for m in messages]

    async def _room_buckets(self, room_id: str) -> list[int]:
        return [r[0] for r in await self._q(self._buckets, (room_id,))]  # newest first

    async def recent(self, room_id: str, limit: int) -> list[Message]:
        messages, _ = await self.before(room_id, None, limit)
        return messages

    async def before(
        self, room_id: str, before_id: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        buckets = await self._room_buckets(room_id)
        if before_id is not None:
            top = bucket_of(before_id)
            buckets = [b for b in buckets if b <= top]
        found: list[Message] = []
        for b in buckets:  # newest bucket first; rows newest first
            want = limit + 1 - len(found)
            if before_id is not None and b == bucket_of(before_id):
                rows = await self._q(self._before, (room_id, b, before_id, want))
            else:
                rows = await self._q(self._newest, (room_id, b, want))
            found.extend(_to_message(r) for r in rows)
            if len(found) > limit:
                break
        has_more = len(found) > limit
        return await self._with_readers(room_id, found[:limit][::-1]), has_more

    async def contains(self, room_id: str, message_id: str) -> bool:
        return bool(await self._q(self._one, (room_id, bucket_of(message_id), message_id)))

    async def after(self, room_id: str, since_id: str, cap: int) -> tuple[list[Message], bool]:
        start = bucket_of(since_id)
        buckets = sorted(b for b in await self._room_buckets(room_id) if b >= start)
        found: list[Message] = []
        for b in buckets:  # oldest bucket first; rows oldest first
            want = cap + 1 - len(found)
            rows = await self._q(self._after, (room_id, b, since_id, want))
            found.extend(_to_message(r) for r in rows)
            if len(found) > cap:
                break
        return await self._with_readers(room_id, found[:cap]), len(found) > cap
