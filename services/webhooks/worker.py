"""One delivery loop per endpoint, each its own Kafka consumer group
(``<PARLEY_WEBHOOK_GROUP>.<endpoint>``) on the messages topic and, if the endpoint wants
presence or membership events, on the events topic (``<topic>.events``, ``events.py``), so a
slow or dead endpoint delays only itself and never the gateways (which only append to Kafka).

For each record, in partition order: the event it means (``message.created`` for a message,
``message.read`` for a receipt, the recorded event of an events record; records the gateway
refused and undecodable ones are skipped),
if the endpoint wants it, is POSTed signed (``signing.py``) with a stable delivery id; a non-2xx
answer or a network error is retried with exponential backoff and full jitter, up to
``PARLEY_WEBHOOK_MAX_ATTEMPTS``; then the event goes to the dead-letter topic (``acks=all``).
Offsets are committed only after that, so a crash redelivers (at least once; duplicates carry
the same delivery id).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from dataclasses import replace
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge, Histogram

from services.common.crypto import Cipher
from services.common.kafka_io import kafka_options
from services.common.model import Message, Receipt, decode_record, iso_ms
from services.common.retry import Backoff
from services.common.settings import Settings
from services.common.webhook_endpoints import Endpoint
from services.storage.events import TYPES as RECORDED_TYPES
from services.storage.events import decode_event, events_topic

from . import signing

log = logging.getLogger("parley.webhooks")
LOG_APPEND_TIME = 1
DELIVERIES = Counter(
    "parley_webhook_deliveries_total",
    "Webhook deliveries by endpoint and outcome (delivered, failed attempt, dead-lettered)",
    ["endpoint", "outcome"],
)
LATENCY = Histogram(
    "parley_webhook_latency_seconds", "Webhook POST round trip (any answer)", ["endpoint"]
)
LAG = Gauge(
    "parley_webhook_lag_seconds", "Age of the event being delivered, per endpoint", ["endpoint"]
)


def delivery_id(endpoint: str, event: str, key: str) -> str:
    return hashlib.sha256(f"{endpoint}\n{event}\n{key}".encode()).hexdigest()[:32]


def recorded_event_of(record: ConsumerRecord) -> tuple[str, str, dict[str, Any], int] | None:
    """``(type, stable key, data, when)`` of an events-topic record (``events.py``)."""
    event = decode_event(record.value)
    if event is None:
        return None
    return event.type, event.id, event.data, event.at_ms


def event_of(record: ConsumerRecord, cipher: Cipher) -> tuple[str, str, dict[str, Any]] | None:
    """``(event type, stable key, data)`` of a messages-topic record, or None for one that
    is no event."""
    try:
        decoded = decode_record(record.value)
    except ValueError:
        return None
    if isinstance(decoded, Receipt):
        key = f"{decoded.room_id}/{decoded.message_id}/{decoded.user_id}"
        data = {
            "roomId": decoded.room_id,
            "messageId": decoded.message_id,
            "userId": decoded.user_id,
            "readAt": iso_ms(decoded.read_ms),
        }
        return "message.read", key, data
    message: Message = decoded
    if (
        message.deadline_ms is not None
        and record.timestamp_type == LOG_APPEND_TIME
        and record.timestamp > message.deadline_ms
    ):
        return None  # the gateway answered unavailable: not stored, no event
    try:
        text = cipher.open_text(message.text, message.id)
    except ValueError:
        log.error("cannot open message %s (encryption keys?); skipped", message.id)
        return None
    return "message.created", message.id, replace(message, text=text).to_wire()


class EndpointWorker:
    def __init__(self, settings: Settings, endpoint: Endpoint, cipher: Cipher) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.cipher = cipher
        self.started = False

    def topics(self) -> list[str]:
        """The messages topic for message.* events, the events topic for the others."""
        s, wants = self.settings, self.endpoint.events
        topics = [s.kafka_topic] if wants - RECORDED_TYPES else []
        return topics + ([events_topic(s.kafka_topic)] if wants & RECORDED_TYPES else [])

    async def run(self) -> None:
        backoff = Backoff(0.5, 10.0)
        while True:
            s = self.settings
            consumer = AIOKafkaConsumer(
                **kafka_options(s),
                group_id=f"{s.webhook_group}.{self.endpoint.name}",
                client_id=f"parley-webhooks-{s.pod_id}-{self.endpoint.name}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=100,
            )
            dead = AIOKafkaProducer(**kafka_options(s), acks="all", enable_idempotence=True)
            consumer.subscribe(self.topics())
            try:
                await consumer.start()
                await dead.start()
                self.started = True
                backoff.reset()
                async with httpx.AsyncClient(timeout=s.webhook_timeout_seconds) as http:
                    await self._loop(consumer, dead, http)
            except KafkaError as exc:
                self.started = False
                delay = backoff.next()
                log.warning("%s: kafka (%s); retrying in %.1fs", self.endpoint.name, exc, delay)
                await asyncio.sleep(delay)
            finally:
                self.started = False
                with contextlib.suppress(Exception):
                    await consumer.stop()
                with contextlib.suppress(Exception):
                    await dead.stop()

    async def _loop(
        self, consumer: AIOKafkaConsumer, dead: AIOKafkaProducer, http: httpx.AsyncClient
    ) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    await self._handle(record, dead, http)
                await consumer.commit(
                    {TopicPartition(tp.topic, tp.partition): records[-1].offset + 1}
                )
            if not batches:
                LAG.labels(self.endpoint.name).set(0)

    async def _handle(
        self, record: ConsumerRecord, dead: AIOKafkaProducer, http: httpx.AsyncClient
    ) -> None:
        if record.topic == events_topic(self.settings.kafka_topic):
            found = recorded_event_of(record)
        else:
            message_event = event_of(record, self.cipher)
            found = None if message_event is None else (*message_event, record.timestamp)
        if found is None or not self.endpoint.wants(found[0]):
            return
        event, key, data, at_ms = found
        LAG.labels(self.endpoint.name).set(max(0.0, time.time() - record.timestamp / 1000))
        delivery = delivery_id(self.endpoint.name, event, key)
        body = json.dumps(
            {"id": delivery, "type": event, "createdAt": iso_ms(at_ms), "data": data},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        error = await self._deliver(http, event, delivery, body)
        if error is None:
            return
        envelope = {
            "endpoint": self.endpoint.name,
            "deliveryId": delivery,
            "type": event,
            "attempts": self.settings.webhook_max_attempts,
            "error": error,
            "body": body.decode(),
        }
        await dead.send_and_wait(
            self.settings.webhook_dead_letters,
            json.dumps(envelope).encode(),
            key=self.endpoint.name.encode(),
        )
        DELIVERIES.labels(self.endpoint.name, "dead").inc()
        log.warning("%s: %s %s dead-lettered (%s)", self.endpoint.name, event, delivery, error)

    async def _deliver(
        self, http: httpx.AsyncClient, event: str, delivery: str, body: bytes
    ) -> str | None:
        """POST until a 2xx or the attempts run out; None on success, else the last error."""
        s, name = self.settings, self.endpoint.name
        error = ""
        for attempt in range(1, s.webhook_max_attempts + 1):
            now = int(time.time())
            headers = {
                "Content-Type": "application/json",
                signing.HEADER: signing.sign(self.endpoint.secret, now, body),
                signing.DELIVERY_HEADER: delivery,
                signing.EVENT_HEADER: event,
                "User-Agent": "parley-webhooks/1",
            }
            started = time.perf_counter()
            try:
                response = await http.post(self.endpoint.url, content=body, headers=headers)
                LATENCY.labels(name).observe(time.perf_counter() - started)
                if 200 <= response.status_code < 300:
                    DELIVERIES.labels(name, "delivered").inc()
                    return None
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                LATENCY.labels(name).observe(time.perf_counter() - started)
                error = f"{type(exc).__name__}: {exc}"[:300]
            DELIVERIES.labels(name, "failed").inc()
            if attempt < s.webhook_max_attempts:
                ceiling = min(
                    s.webhook_backoff_max_seconds, s.webhook_backoff_seconds * 2 ** (attempt - 1)
                )
                await asyncio.sleep(random.uniform(0, ceiling))  # full jitter
        return error
