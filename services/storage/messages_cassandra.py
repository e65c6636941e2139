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
from cassandra.query import BatchStatement, BatchType

from services.common.ids import timestamp_ms
from services.common.model import Message, Receipt
from services.common.settings import Settings
from services.storage import metrics
from services.storage.cassandra_io import CassandraAdapter

BUCKET_MS = 10 * 24 * 3600 * 1000
WRITE_CONCURRENCY = 16  # statements in flight per ``write`` (each may be a batch of rows)
# Rows of one partition go to Cassandra as one UNLOGGED batch (a single mutation on the replica,
# no batch log): far fewer statements and driver round trips than one INSERT per row. A batch
# holds at most this many rows and about this many bytes of row data, well under Cassandra's
# ``batch_size_fail_threshold`` (50 KiB by default; it warns above 5 KiB, harmless here).
BATCH_ROWS = 100
BATCH_BYTES = 32 * 1024
ROW_OVERHEAD = 120  # ids, timestamps and framing of one row, roughly
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


def _chunks(rows: list[tuple[Any, ...]], sizes: list[int]) -> list[list[tuple[Any, ...]]]:
    """Split one partition's rows into batches of at most ``BATCH_ROWS`` rows and about
    ``BATCH_BYTES`` bytes (a row bigger than that goes alone)."""
    chunks: list[list[tuple[Any, ...]]] = []
    current: list[tuple[Any, ...]] = []
    used = 0
    for row, size in zip(rows, sizes, strict=True):
        if current and (len(current) >= BATCH_ROWS or used + size > BATCH_BYTES):
            chunks.append(current)
            current, used = [], 0
        current.append(row)
        used += size
    if current:
        chunks.append(current)
    return chunks


def _statements(
    table: str, insert: Any, rows: list[tuple[Any, ...]], sizes: list[int]
) -> list[tuple[str, Any, Any, int]]:
    """Jobs for ``_run_all`` writing one partition's rows: a lone row as the prepared insert,
    more as unlogged batches of that insert."""
    jobs: list[tuple[str, Any, Any, int]] = []
    for chunk in _chunks(rows, sizes):
        if len(chunk) == 1:
            jobs.append((table, insert, chunk[0], 1))
            continue
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for params in chunk:
            batch.add(insert, params)
        jobs.append((table, batch, None, len(chunk)))
    return jobs


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
        """Store a batch; raises ``Unavailable`` unless every row was accepted.

        Rows are grouped by partition ``(room_id, bucket)`` into unlogged batches (see
        ``BATCH_ROWS``); every write is an idempotent upsert by primary key, so a batch retried
        or redelivered after a crash stores each message once."""
        partitions: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        sizes: dict[tuple[str, int], list[int]] = {}
        utc = dt.UTC
        from_ts = dt.datetime.fromtimestamp
        for m in messages:
            key = (m.room_id, bucket_of(m.id))
            attachment = json.dumps(m.attachment) if m.attachment else None
            params = (
                m.room_id,
                key[1],
                m.id,
                m.user_id,
                m.username,
                m.text,
                from_ts(m.created_ms / 1000, tz=utc),
                m.reply_to,
                m.client_msg_id,
                attachment,
            )
            size = ROW_OVERHEAD + 4 * len(m.text) + len(m.username) + len(attachment or "")
            partitions.setdefault(key, []).append(params)
            sizes.setdefault(key, []).append(size)
        new_buckets = set(partitions) - self._known_buckets
        jobs: list[tuple[str, Any, Any, int]] = [
            ("room_buckets", self._insert_bucket, b, 1) for b in new_buckets
        ]
        for key, rows in partitions.items():
            jobs += _statements("messages", self._insert, rows, sizes[key])
        await self._run_all(jobs)
        self._known_buckets |= new_buckets

    async def _run_all(self, jobs: list[tuple[str, Any, Any, int]]) -> None:
        """Run statements, at most ``WRITE_CONCURRENCY`` at a time; raise the first failure
        once every one has finished (none is left running behind the caller's retry)."""
        gate = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def one(table: str, stmt: Any, params: Any, rows: int) -> None:
            async with gate:
                await self._write(table, stmt, params, rows)

        if len(jobs) == 1:
            await self._write(*jobs[0])
            return
        results = await asyncio.gather(*(one(*j) for j in jobs), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def write_receipts(self, receipts: Sequence[Receipt]) -> None:
        """Store read receipts, one unlogged batch per receipts partition (idempotent)."""
        partitions: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        for r in receipts:
            read_at = dt.datetime.fromtimestamp(r.read_ms / 1000, tz=dt.UTC)
            key = (r.room_id, bucket_of(r.message_id))
            params = (r.room_id, key[1], r.message_id, r.user_id, read_at)
            partitions.setdefault(key, []).append(params)
        jobs: list[tuple[str, Any, Any, int]] = []
        for rows in partitions.values():
            jobs += _statements(
                "read_receipts", self._insert_receipt, rows, [ROW_OVERHEAD] * len(rows)
            )
        await self._run_all(jobs)

    async def _write(self, table: str, stmt: Any, params: Any, rows: int = 1) -> None:
        """One statement (a row, or an unlogged batch of ``rows`` rows of one partition),
        its rows counted, its time observed and its failure classified by table."""
        started = time.perf_counter()
        try:
            await self._q(stmt, params)
        except Exception as exc:
            metrics.CASSANDRA_WRITE_ERRORS.labels(table, metrics.write_error_kind(exc)).inc()
            raise
        finally:
            metrics.CASSANDRA_WRITE_SECONDS.labels(table).observe(time.perf_counter() - started)
        metrics.CASSANDRA_WRITES.labels(table).inc(rows)

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
