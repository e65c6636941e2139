"""Encryption at rest: with keys configured, Kafka and Cassandra hold ciphertext only and
clients see plaintext (live, in history, and file downloads)."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.storage.cassandra_io import connect, execute
from services.storage.messages_cassandra import bucket_of
from tests.support.client import ChatClient
from tests.support.procs import Service
from tests.support.system import PRESENCE_ENV

pytestmark = pytest.mark.e2e
SECRET_TEXT = "the launch code is 0000"


@pytest.fixture(scope="module")
def sealed_gateway(cluster, engine_env):
    keys = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
    env = {
        **engine_env,
        **PRESENCE_ENV,
        "PARLEY_ENCRYPTION_KEYS": keys,
        "PARLEY_ENCRYPTION_ACTIVE_KEY": "k1",
    }
    gateway = Service("gateway", f"gateway-sealed-{uuid.uuid4().hex[:4]}", env).start()
    try:
        yield gateway.wait_ready()
    finally:
        gateway.stop()


async def test_text_and_files_are_ciphertext_at_rest(sealed_gateway, cluster):
    settings = cluster.settings
    room, user = f"sealed-{uuid.uuid4().hex[:8]}", f"enc-{uuid.uuid4().hex[:6]}"
    client = await ChatClient(sealed_gateway.url, cluster.token(user)).connect()
    try:
        await client.call("room:join", room)
        ack = await client.call("chat:message", {"roomId": room, "text": SECRET_TEXT})
        live = await client.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])
        assert live["text"] == SECRET_TEXT
        data = b"secret file bytes " * 100
        file_ack = await client.call(
            "chat:file",
            {"roomId": room, "file": data, "fileName": "s.txt", "mimeType": "text/plain"},
        )

        cluster_, session = await connect(settings, settings.cassandra_keyspace)
        try:
            body = None
            for _ in range(100):
                rows = list(
                    await execute(
                        session,
                        "SELECT body FROM messages WHERE room_id=%s AND bucket=%s "
                        "AND message_id=%s",
                        (room, bucket_of(ack["messageId"]), ack["messageId"]),
                    )
                )
                if rows:
                    body = rows[0][0]
                    break
                await asyncio.sleep(0.2)
            assert body is not None and body.startswith("enc:v1:k1:")
            assert SECRET_TEXT not in body
            chunks = list(
                await execute(
                    session,
                    "SELECT data FROM file_chunks WHERE file_id=%s",
                    (file_ack["attachment"]["id"],),
                )
            )
            assert chunks and b"secret file bytes" not in b"".join(bytes(c[0]) for c in chunks)
        finally:
            cluster_.shutdown()

        consumer = AIOKafkaConsumer(
            settings.kafka_topic,
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        try:
            found = None
            deadline = asyncio.get_running_loop().time() + 20
            while found is None and asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for r in records:
                        if ack["messageId"].encode() in r.value:
                            found = r.value
        finally:
            await consumer.stop()
        assert found is not None and SECRET_TEXT.encode() not in found

        page = await client.call("chat:history", {"roomId": room})
        assert page["messages"][0]["text"] == SECRET_TEXT
        async with httpx.AsyncClient() as http:
            got = await http.get(
                sealed_gateway.url + file_ack["attachment"]["url"],
                headers={"Authorization": f"Bearer {cluster.token(user)}"},
            )
        assert got.status_code == 200 and got.content == data
    finally:
        await client.close()
