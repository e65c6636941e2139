"""Engine trust on the real engines: Redis over TLS with an ACL user, Kafka over SASL_SSL with
SCRAM-SHA-512, through the services' own adapters and the one place that builds each client's
options (``redis_io.redis_options``, ``kafka_io.kafka_options``).

``deploy/local/infra.sh`` starts these listeners beside the plaintext ones and writes the
settings a client needs to ``<run dir>/<engine>/trust.env`` (run dir: ``PARLEY_RUN_DIR``,
default ``<repo>/.run``). Nothing here is skipped: engines started before infra.sh had the
listeners make these tests fail with a message saying to restart them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import ssl
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from services.common.ids import IdGenerator
from services.common.kafka_io import kafka_options
from services.common.limits import Limit
from services.common.model import Message, decode_record
from services.common.redis_io import redis_client, redis_options
from services.common.settings import Settings
from services.gateway.fanout import FanoutManager
from services.persistence.migrate import ensure_topics
from services.storage.control import OPS, Command
from services.storage.control_redis import RedisControlBus
from services.storage.messages_kafka import KafkaMessageLog
from services.storage.presence_redis import RedisPresenceStore
from services.storage.ratelimit_redis import RedisRateLimiter
from tests.contracts.admin_contract import ControlBusContract
from tests.contracts.presence_contract import PresenceStoreContract
from tests.support.procs import ROOT

pytestmark = pytest.mark.integration

RUN_DIR = Path(os.environ.get("PARLEY_RUN_DIR") or ROOT / ".run")


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2):
        return True
    return False


def secured_env(engine: str) -> dict[str, str]:
    """The ``PARLEY_*`` settings infra.sh wrote for the engine's secured listener."""
    path = RUN_DIR / engine / "trust.env"
    restart = (
        f"the {engine} engine under {RUN_DIR} predates its secured listener (infra.sh adds it "
        f"on start): restart the engines — `bash deploy/local/infra.sh down {engine}` (or "
        "`make down`), then `make test`"
    )
    if not path.is_file():
        pytest.fail(f"{path} is missing: {restart}", pytrace=False)
    env = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line.strip())
    if engine == "redis":
        address = urlsplit(env["PARLEY_REDIS_URL"])
        host, port = address.hostname or "", address.port or 0
    else:
        host, _, raw = env["PARLEY_KAFKA_BOOTSTRAP"].rpartition(":")
        port = int(raw)
    if not _listening(host, port):
        pytest.fail(f"nothing listens on {host}:{port} (from {path}): {restart}", pytrace=False)
    return env


@pytest.fixture(scope="module")
async def redis_tls(engine_env):
    """Settings for the TLS listener and ACL user; the keys left under their prefix are
    removed at the end, over the secured connection."""
    settings = Settings.from_env({**os.environ, **engine_env, **secured_env("redis")})
    assert settings.redis_tls_enabled and settings.redis_username and settings.redis_password
    settings = dataclasses.replace(settings, redis_prefix=f"{settings.redis_prefix}tls:")
    yield settings
    client = redis_client(settings.redis_url, options=redis_options(settings))
    try:
        keys = [key async for key in client.scan_iter(match=settings.redis_prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def kafka_sasl(engine_env) -> Settings:
    settings = Settings.from_env({**os.environ, **engine_env, **secured_env("kafka")})
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_password
    return settings


# --- Redis: TLS + ACL user --------------------------------------------------------------


class TestPresenceOverTls(PresenceStoreContract):
    @pytest.fixture
    async def presence(self, redis_tls):
        # no grace period, as the plaintext contract run (a disconnect is reported at once)
        store = RedisPresenceStore.from_settings(
            dataclasses.replace(redis_tls, presence_grace_seconds=0.0)
        )
        await store.start()
        assert await store.healthy(), "presence store cannot reach Redis over TLS"
        yield store
        await store.close()


class TestControlBusOverTls(ControlBusContract):
    @pytest.fixture
    async def bus(self, redis_tls):
        return RedisControlBus(
            redis_tls.redis_url, redis_tls.redis_prefix, redis_options=redis_options(redis_tls)
        )


async def test_rate_limiter_over_tls(redis_tls):
    client = redis_client(redis_tls.redis_url, options=redis_options(redis_tls))
    try:
        assert (await client.acl_whoami()) == redis_tls.redis_username
        limiter = RedisRateLimiter(client, redis_tls.redis_prefix)
        key, limit = f"user-{uuid.uuid4().hex[:8]}", Limit(count=3, window_ms=60_000)
        hits = [await limiter.hit(key, limit, 1_000 + i) for i in range(5)]
        assert hits == [True, True, True, False, False]
    finally:
        await client.aclose()


async def test_fanout_round_trip_over_tls(redis_tls):
    """What one gateway's fan-out manager publishes, another one's listener receives."""
    channel = redis_tls.redis_prefix + "socketio"
    options = redis_options(redis_tls)
    sender = FanoutManager(redis_tls.redis_url, channel=channel, redis_options=options)
    receiver = FanoutManager(redis_tls.redis_url, channel=channel, redis_options=options)
    heard: asyncio.Queue[dict] = asyncio.Queue()

    async def on_message(message):
        if message.get("type") == "message":
            await heard.put(json.loads(message["data"]))

    receiver._on_message = on_message  # what arrives, before any local delivery
    sender.connect_redis()
    receiver.connect_redis()
    listener = asyncio.ensure_future(receiver._listen_forever())
    try:
        for _ in range(100):
            if receiver.listening:
                break
            await asyncio.sleep(0.05)
        assert receiver.listening, "the fan-out listener did not subscribe over TLS"
        body = {"method": "emit", "event": "chat:message", "room": None, "data": ["hi"]}
        assert await sender._publish(channel, body, "pod") == 1
        assert await asyncio.wait_for(heard.get(), 5) == body
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        for manager in (sender, receiver):
            if manager.redis is not None:
                await manager.redis.aclose()


async def test_redis_wrong_password_is_refused(redis_tls):
    wrong = dataclasses.replace(redis_tls, redis_password="not-the-password")
    client = redis_client(wrong.redis_url, options=redis_options(wrong))
    try:
        with pytest.raises(AuthenticationError, match="invalid username-password pair"):
            await client.ping()
    finally:
        await client.aclose()


async def test_redis_without_tls_is_refused(redis_tls):
    """A plaintext client on the TLS port gets no answer, only a closed connection."""
    plain_url = "redis://" + redis_tls.redis_url.split("://", 1)[1]
    plain = dataclasses.replace(
        redis_tls, redis_url=plain_url, redis_tls=False, redis_tls_ca_file=""
    )
    assert "connection_class" not in redis_options(plain)
    client = redis_client(plain.redis_url, options=redis_options(plain))
    try:
        with pytest.raises(RedisConnectionError):
            await client.ping()
    finally:
        await client.aclose()


async def test_redis_certificate_is_verified(redis_tls):
    """Without the local CA (system CAs only) the server's certificate is not trusted."""
    untrusted = dataclasses.replace(redis_tls, redis_tls_ca_file="")
    client = redis_client(untrusted.redis_url, options=redis_options(untrusted))
    try:
        with pytest.raises(RedisConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.ping()
    finally:
        await client.aclose()


# --- Kafka: SASL_SSL + SCRAM-SHA-512 ----------------------------------------------------


@pytest.fixture(scope="module")
async def secure_topic(kafka_sasl):
    """A topic of its own, made and removed over the SASL_SSL listener."""
    settings = dataclasses.replace(kafka_sasl, kafka_topic=f"{kafka_sasl.kafka_topic}.sasl")
    assert await ensure_topics(settings), "the topic existed already"
    yield settings
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        await admin.delete_topics([settings.kafka_topic, settings.kafka_topic + ".events"])
    finally:
        await admin.close()


async def test_kafka_log_appends_and_a_consumer_reads_over_sasl_ssl(secure_topic):
    settings = secure_topic
    message_id, ms = IdGenerator().new_id()
    message = Message(
        id=message_id, room_id="sasl-room", user_id="u1", username="U", text="hi", created_ms=ms
    )
    log = KafkaMessageLog(settings)
    await log.start()
    try:
        assert await log.healthy(), "the producer did not connect over SASL_SSL"
        await log.append(message)
    finally:
        await log.close()
    consumer = AIOKafkaConsumer(
        settings.kafka_topic,
        **kafka_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    assert record.key == b"sasl-room"
    stored = decode_record(record.value)
    assert isinstance(stored, Message) and (stored.id, stored.text) == (message_id, "hi")


async def _refused(settings: Settings, caplog) -> str:
    """Starts a producer; returns what aiokafka logged about the refused connection."""
    producer = AIOKafkaProducer(**kafka_options(settings), request_timeout_ms=5000)
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        try:
            with pytest.raises(KafkaConnectionError):
                await producer.start()
        finally:
            await producer.stop()
    return "\n".join(r.getMessage() for r in caplog.records)


async def test_kafka_wrong_password_is_refused(kafka_sasl, caplog):
    wrong = dataclasses.replace(kafka_sasl, kafka_password="not-the-password")
    logged = await _refused(wrong, caplog)
    assert "SaslAuthenticationFailed" in logged and "invalid credentials" in logged


async def test_kafka_certificate_is_verified(kafka_sasl, caplog):
    """Without the local CA (system CAs only) the broker's certificate is not trusted."""
    untrusted = dataclasses.replace(kafka_sasl, kafka_tls_ca_file="")
    context = kafka_options(untrusted)["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    logged = await _refused(untrusted, caplog)
    assert "CERTIFICATE_VERIFY_FAILED" in logged


async def test_gateway_components_work_over_the_secured_engines(
    engine_env, redis_tls, secure_topic
):
    """The gateway's own wiring (bootstrap.build) with both secured engines: every Redis part
    authenticates as the ACL user over TLS, the Kafka log appends over SASL_SSL."""
    from services.gateway.bootstrap import build

    settings = Settings.from_env(
        {
            **os.environ,
            **engine_env,
            **secured_env("redis"),
            **secured_env("kafka"),
            "PARLEY_REDIS_PREFIX": redis_tls.redis_prefix,
            "PARLEY_KAFKA_TOPIC": secure_topic.kafka_topic,
        }
    )
    parts = build(settings)
    heard: asyncio.Queue = asyncio.Queue()

    async def on_command(command) -> None:
        await heard.put(command)

    try:
        assert await parts.redis.acl_whoami() == settings.redis_username
        parts.manager.connect_redis()  # the fan-out manager's own client
        assert await parts.manager.redis.acl_whoami() == settings.redis_username
        assert await parts.claims.put_if_absent(f"c-{uuid.uuid4().hex}", "m1", 60) is None
        await parts.presence.start()
        assert await parts.presence.healthy()
        await parts.control.start(on_command)
        command = Command(op=OPS[0], user_id=f"u-{uuid.uuid4().hex[:8]}")
        assert await parts.control.publish(command) == 1
        assert (await asyncio.wait_for(heard.get(), 5)).user_id == command.user_id
        await parts.log.start()
        assert await parts.log.healthy()
    finally:
        await parts.control.close()
        await parts.presence.close()
        await parts.log.close()
        if parts.manager.redis is not None:
            await parts.manager.redis.aclose()
        await parts.redis.aclose()
