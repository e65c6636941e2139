"""The persistence worker: Kafka consumer group → message store, offsets committed after writes.

Loop: poll a batch; decode (undecodable records go to ``<topic>.dlq`` with the reason in a
header); write the batch to the store, retrying with capped jittered backoff until it is
accepted; then commit the batch's offsets. A crash between write and commit redelivers the
batch, and the idempotent write (same id → same row) absorbs it: stored exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, KafkaError

from services.common.errors import Unavailable
from services.common.kafka_io import kafka_options
from services.common.model import Message, Receipt, decode_record
from services.common.retry import Backoff
from services.common.settings import Settings
from services.persistence import metrics
from services.storage.messages import MessageStore

log = logging.getLogger("parley.persistence")
MAX_BACKOFF = 5.0
# One poll returns up to this many records (across partitions): bigger polls give the store
# more rows per Cassandra partition to batch, and fewer commits. A partition fetch may bring
# up to PARTITION_FETCH_BYTES (a few thousand records) so a poll is rarely short of records.
POLL_RECORDS = 2000
PARTITION_FETCH_BYTES = 4 * 1024 * 1024
FETCH_BYTES = 32 * 1024 * 1024


LOG_APPEND_TIME = 1


def refused_by_gateway(message: Message, record: ConsumerRecord) -> bool:
    """True if the broker appended the message after the gateway gave up on it."""
    return (
        message.deadline_ms is not None
        and record.timestamp_type == LOG_APPEND_TIME
        and record.timestamp > message.deadline_ms
    )


class RebalanceMetrics(ConsumerRebalanceListener):
    """Counts rebalances and forgets the lag of partitions this worker no longer owns."""

    async def on_partitions_revoked(self, revoked: Collection[Any]) -> None:
        metrics.REBALANCES.inc()
        for tp in revoked:
            with contextlib.suppress(KeyError):  # never measured
                metrics.PARTITION_LAG.remove(str(tp.partition))

    async def on_partitions_assigned(self, assigned: Collection[Any]) -> None:
        metrics.ASSIGNED_PARTITIONS.set(len(assigned))


class PersistenceWorker:
    def __init__(self, settings: Settings, store: MessageStore) -> None:
        self._settings = settings
        self._store = store
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq: AIOKafkaProducer | None = None
        self.connected = False

    @property
    def dlq_topic(self) -> str:
        return self._settings.kafka_topic + ".dlq"

    async def healthy(self) -> bool:
        return self.connected

    async def _start_clients(self) -> None:
        backoff = Backoff(0.1, MAX_BACKOFF)
        while True:
            consumer = AIOKafkaConsumer(
                **kafka_options(self._settings),
                group_id=self._settings.kafka_group,
                client_id=f"parley-persistence-{self._settings.pod_id}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=POLL_RECORDS,
                max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
                fetch_max_bytes=FETCH_BYTES,
            )
            dlq = AIOKafkaProducer(
                **kafka_options(self._settings),
                acks="all",
                enable_idempotence=True,
            )
            consumer.subscribe([self._settings.kafka_topic], listener=RebalanceMetrics())
            try:
                await consumer.start()
                await dlq.start()
            except KafkaError as exc:
                await consumer.stop()
                await dlq.stop()
                delay = backoff.next()
                log.warning("kafka not reachable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            self._consumer, self._dlq = consumer, dlq
            self.connected = True
            log.info(
                "consuming %s as group %s", self._settings.kafka_topic, self._settings.kafka_group
            )
            return

    async def run(self) -> None:
        await self._start_clients()
        assert self._consumer is not None
        try:
            while True:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=POLL_RECORDS)
                if batches:
                    await self._handle(batches)
                await self._update_lag()
        finally:
            self.connected = False
            await self._consumer.stop()
            if self._dlq is not None:
                await self._dlq.stop()

    async def _handle(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        assert self._consumer is not None
        messages: list[Message] = []
        receipts: list[Receipt] = []
        for records in batches.values():
            for record in records:
                try:
                    decoded = decode_record(record.value or b"")
                except ValueError as exc:
                    await self._dead_letter(record, str(exc))
                    continue
                if isinstance(decoded, Receipt):
                    receipts.append(decoded)
                elif refused_by_gateway(decoded, record):
                    metrics.EXPIRED.inc()
                    log.warning(
                        "dropping message %s appended after its deadline (the gateway "
                        "acked unavailable)",
                        decoded.id,
                    )
                else:
                    messages.append(decoded)
        started = time.monotonic()
        await self._until_accepted(self._store.write, messages)
        await self._until_accepted(self._store.write_receipts, receipts)
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)
        now_ms = time.time() * 1000
        for m in messages:
            metrics.INGEST_SECONDS.observe(max(0.0, (now_ms - m.created_ms) / 1000))
        metrics.STORED.inc(len(messages))
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            metrics.COMMITS_FAILED.inc()
            log.warning("offset commit refused (%s); batch will be redelivered", exc)

    async def _until_accepted(
        self, write: Callable[[list[Any]], Awaitable[None]], items: list[Any]
    ) -> None:
        if not items:
            return
        backoff = Backoff(0.1, MAX_BACKOFF)
        while True:
            try:
                await write(items)
                return
            except Unavailable as exc:
                delay = backoff.next()
                metrics.RETRIES.inc()
                await self._update_lag()  # the backlog keeps growing while the store is down
                log.warning(
                    "store write failed (%s); retry %d in %.2fs", exc, backoff.attempts, delay
                )
                await asyncio.sleep(delay)

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        assert self._dlq is not None
        metrics.POISON.inc()
        log.error(
            "poison record partition=%d offset=%d: %s", record.partition, record.offset, reason
        )
        headers = [
            ("reason", reason.encode()[:1000]),
            ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        backoff = Backoff(0.1, MAX_BACKOFF)
        while True:
            try:
                await self._dlq.send_and_wait(
                    self.dlq_topic, value=record.value, key=record.key, headers=headers
                )
                return
            except KafkaError as exc:
                delay = backoff.next()
                log.warning("dead-letter send failed (%s); retry in %.2fs", exc, delay)
                await asyncio.sleep(delay)

    async def _update_lag(self) -> None:
        """Lag = the partition's high watermark minus our position, over assigned partitions."""
        consumer = self._consumer
        if consumer is None:
            return
        lag = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            try:
                behind = max(0, high - await consumer.position(tp))
            except KafkaError:
                continue
            metrics.PARTITION_LAG.labels(str(tp.partition)).set(behind)
            lag += behind
        metrics.LAG.set(lag)
