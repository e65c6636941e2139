"""Kafka adapter of ``MessageLog``: the gateway's producer (acks=all, idempotent).

Records are keyed by room id, so one room's messages stay in one partition, in order. The
producer connects in the background and reconnects by itself: while Kafka is unreachable
``append`` raises ``Unavailable`` (within ``kafka_send_timeout_seconds``) and never pretends.

A send that times out may still sit in the producer's buffer and reach Kafka when it comes
back. So a message carries ``deadlineMs`` (its time + the send timeout); the gateway answers
``unavailable`` only once ``CLOCK_MARGIN_S`` past it, and the worker drops a message the broker
appended after its deadline (the topic stamps ``LogAppendTime``): refused means not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from services.common.errors import Unavailable
from services.common.kafka_io import kafka_options
from services.common.model import Record
from services.common.retry import Backoff
from services.common.settings import Settings
from services.storage import metrics

log = logging.getLogger("parley.kafka")
CLOCK_MARGIN_S = 1.0  # allowed clock difference between gateways and brokers


class KafkaMessageLog:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._starter: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **kafka_options(self._settings),
            acks="all",
            enable_idempotence=True,
            # no lingering: an ack waits on this append; while one request is in flight the
            # next appends batch up by themselves
            linger_ms=0,
            request_timeout_ms=int(self._settings.kafka_send_timeout_seconds * 1000),
            client_id=f"parley-gateway-{self._settings.pod_id}",
        )

    async def start(self) -> None:
        """Connect now if Kafka is up; otherwise keep trying in the background."""
        self._starter = asyncio.create_task(self._connect_forever(), name="kafka-producer-start")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._ready.wait()), timeout=10)

    async def _connect_forever(self) -> None:
        backoff = Backoff(0.5, 10.0)
        while True:
            producer = self._new_producer()
            try:
                await producer.start()
            except KafkaError as exc:
                delay = backoff.next()
                log.warning("kafka producer cannot connect (%s); retrying in %.1fs", exc, delay)
                await producer.stop()
                await asyncio.sleep(delay)
                continue
            self._producer = producer
            self._ready.set()
            log.info("kafka producer connected to %s", self._settings.kafka_bootstrap)
            return

    async def close(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
        if self._producer is not None:
            await self._producer.stop()

    async def healthy(self) -> bool:
        """A metadata round trip to the brokers (readiness probe)."""
        producer = self._producer
        if producer is None:
            return False
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=2)
        except (KafkaError, TimeoutError):
            return False
        return True

    async def append(self, record: Record) -> None:
        producer = self._producer
        if producer is None:
            metrics.KAFKA_APPEND_ERRORS.labels("not_connected").inc()
            raise Unavailable("kafka: producer not connected")
        started = time.perf_counter()
        metrics.KAFKA_IN_FLIGHT.inc()
        try:
            await asyncio.wait_for(
                producer.send_and_wait(
                    self._settings.kafka_topic,
                    value=record.to_record(),
                    key=record.room_id.encode(),
                ),
                timeout=self._settings.kafka_send_timeout_seconds + CLOCK_MARGIN_S,
            )
        except (KafkaError, TimeoutError) as exc:
            timeout = isinstance(exc, TimeoutError | KafkaTimeoutError)
            reason = "timeout" if timeout else "kafka_error"
            metrics.KAFKA_APPEND_ERRORS.labels(reason).inc()
            raise Unavailable(f"kafka: {type(exc).__name__}: {exc}") from exc
        finally:
            metrics.KAFKA_IN_FLIGHT.dec()
            metrics.KAFKA_APPEND_SECONDS.observe(time.perf_counter() - started)
