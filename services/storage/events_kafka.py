"""The Kafka adapter of the events port (port: ``events.py``): a bounded queue drained by one
background task into ``<PARLEY_KAFKA_TOPIC>.events``.

``record`` only puts into the queue (``QUEUE_MAX`` events; full → dropped and counted), so a
socket's ack, a join or a presence transition never waits for Kafka. The task connects with
backoff, sends each event with ``acks=all`` and idempotence, and retries a failed send with
backoff for up to ``RETRY_SECONDS`` before dropping it (counted) and going on. ``close`` gives
the queue ``FLUSH_SECONDS`` to drain (the gateway closes it after its sockets are drained).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.common.kafka_io import kafka_options
from services.common.retry import Backoff
from services.common.settings import Settings

from .events import Event, events_topic
from .metrics import EVENT_QUEUED as QUEUED
from .metrics import EVENT_RECORDS as RECORDS

log = logging.getLogger("parley.events")
QUEUE_MAX = 10_000
RETRY_SECONDS = 30.0
FLUSH_SECONDS = 5.0
BATCH_MAX = 500


class KafkaEventLog:
    def __init__(self, settings: Settings, queue_max: int = QUEUE_MAX) -> None:
        self._settings = settings
        self.topic = events_topic(settings.kafka_topic)
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=queue_max)
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._connected = False

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-log")

    async def healthy(self) -> bool:
        return self._connected

    def record(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            RECORDS.labels(event.type, "dropped").inc()
            log.warning("event queue full: %s of %s dropped", event.type, event.key)
            return
        QUEUED.set(self._queue.qsize())

    async def close(self) -> None:
        if self._task is None:
            return
        deadline = time.monotonic() + FLUSH_SECONDS
        while not self._queue.empty() and self._connected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None
        left = self._queue.qsize()
        if left:
            log.warning("%d events not sent at shutdown (dropped)", left)
            while not self._queue.empty():
                RECORDS.labels(self._queue.get_nowait().type, "dropped").inc()

    async def _connect(self) -> AIOKafkaProducer:
        backoff = Backoff(0.5, 10.0)
        while True:
            producer = AIOKafkaProducer(
                **kafka_options(self._settings),
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                client_id=f"parley-events-{self._settings.pod_id}",
            )
            try:
                await producer.start()
                return producer
            except Exception as exc:  # KafkaError, or DNS/TLS errors of the connect
                with contextlib.suppress(Exception):
                    await producer.stop()
                delay = backoff.next()
                log.warning("event log: kafka not up (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def _run(self) -> None:
        while True:  # a producer that breaks is replaced; the queue stays
            producer = await self._connect()
            self._connected = True
            try:
                while True:
                    batch = [await self._queue.get()]
                    while len(batch) < BATCH_MAX and not self._queue.empty():
                        batch.append(self._queue.get_nowait())
                    QUEUED.set(self._queue.qsize())
                    await self._send(producer, batch)
            except Exception:
                log.exception("event log producer failed; reconnecting")
            finally:
                self._connected = False
                with contextlib.suppress(Exception):
                    await producer.stop()

    async def _send(self, producer: AIOKafkaProducer, batch: list[Event]) -> None:
        """Send a batch, retrying the failed events (in their order) until the budget ends."""
        backoff = Backoff(0.2, 5.0)
        deadline = time.monotonic() + RETRY_SECONDS
        pending = batch
        while pending:
            failed: list[Event] = []
            error: Exception | None = None
            futures = []
            for event in pending:
                try:
                    sent = await producer.send(self.topic, event.encode(), key=event.key.encode())
                    futures.append((event, sent))
                except (KafkaError, TimeoutError) as exc:
                    failed.append(event)
                    error = exc
            for event, sent in futures:
                try:
                    await sent
                    RECORDS.labels(event.type, "sent").inc()
                except (KafkaError, TimeoutError) as exc:
                    failed.append(event)
                    error = exc
            pending = failed
            if pending and time.monotonic() >= deadline:
                for event in pending:
                    RECORDS.labels(event.type, "dropped").inc()
                log.error("%d events dropped after %.0fs: %s", len(pending), RETRY_SECONDS, error)
                return
            if pending:
                log.warning("event log: %d sends failed (%s); retrying", len(pending), error)
                await asyncio.sleep(backoff.next())
