"""What the fault tests observe from outside: engines stopped and started for real through
``deploy/local/infra.sh``, a service's Prometheus metrics, Kafka offsets, and the rows Cassandra
actually holds (read directly, never through Parley's store).

``infra.sh`` reads the same ``PARLEY_*_PORT`` / ``PARLEY_RUN_DIR`` variables as the settings,
so a test stops exactly the engines the run's services use.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka_io import kafka_options
from services.common.settings import Settings
from services.storage.cassandra_io import connect, execute
from tests.support.procs import ROOT

log = logging.getLogger(__name__)


def infra(*args: str, timeout: float = 240, attempts: int = 1) -> str:
    """``infra.sh up|down ENGINE``; fails the test with the script's output if it fails.

    ``attempts`` > 1 retries a failed start (15 s apart): a restarted engine can find its port
    briefly taken (another process's ephemeral port, a socket still closing).
    """
    for attempt in range(1, attempts + 1):
        result = subprocess.run(
            ["bash", str(ROOT / "deploy/local/infra.sh"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode == 0:
            return result.stdout
        if attempt < attempts:
            log.warning("infra.sh %s failed (attempt %d), retrying:\n%s", args, attempt, result)
            time.sleep(15)
    raise AssertionError(f"infra.sh {args} failed:\n{result.stdout}\n{result.stderr}")


def parse_metrics(text: str) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text exposition: ``{name: value}``."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "{" in line:
            continue
        name, _, value = line.partition(" ")
        try:
            samples[name] = float(value.split()[0])
        except (ValueError, IndexError):
            continue
    return samples


async def metrics(url: str, timeout: float = 5) -> dict[str, float]:
    async with httpx.AsyncClient() as http:
        r = await http.get(url + "/metrics", timeout=timeout)
    r.raise_for_status()
    return parse_metrics(r.text)


async def readyz(url: str) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(url + "/readyz", timeout=10)).status_code


async def eventually(
    probe: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.25
) -> float:
    """Wait until ``probe()`` is true; returns the seconds it took, fails naming ``what``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await probe():
        assert loop.time() - started < timeout, f"{what}: not within {timeout:.0f}s"
        await asyncio.sleep(every)
    return loop.time() - started


async def log_end_offsets(settings: Settings) -> dict[int, int]:
    """The high watermark of every partition of the settings' topic."""
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        (topic,) = await admin.describe_topics([settings.kafka_topic])
    finally:
        await admin.close()
    tps = [TopicPartition(settings.kafka_topic, p["partition"]) for p in topic["partitions"]]
    consumer = AIOKafkaConsumer(**kafka_options(settings), group_id=None)
    await consumer.start()
    try:
        consumer.assign(tps)  # an unassigned consumer's stop() raises CancelledError (aiokafka)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def committed_offsets(settings: Settings) -> dict[int, int]:
    """The offsets the settings' consumer group has committed on its topic."""
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(settings.kafka_group)
    finally:
        await admin.close()
    return {
        tp.partition: meta.offset
        for tp, meta in found.items()
        if tp.topic == settings.kafka_topic and meta.offset >= 0
    }


async def stored_rows(settings: Settings, rooms: Iterable[str]) -> list[tuple[str, str, str, str]]:
    """Every ``(room, message_id, user_id, body)`` row of those rooms, straight from Cassandra.

    Walks the buckets ``room_buckets`` lists for each room; every row of every partition is
    returned, so an id stored twice (two buckets, two rooms) shows up twice.
    """
    ks = settings.cassandra_keyspace
    cluster, session = await connect(settings)
    try:
        rows: list[tuple[str, str, str, str]] = []
        for room in rooms:
            buckets = await execute(
                session, f"SELECT bucket FROM {ks}.room_buckets WHERE room_id = %s", (room,)
            )
            for (bucket,) in buckets:
                part = await execute(
                    session,
                    f"SELECT message_id, user_id, body FROM {ks}.messages "
                    "WHERE room_id = %s AND bucket = %s",
                    (room, bucket),
                )
                rows.extend((room, r[0], r[1], r[2]) for r in part)
        return rows
    finally:
        await asyncio.to_thread(cluster.shutdown)
