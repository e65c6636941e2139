"""Benchmark-private names on the shared engines: a keyspace, a topic, a group and a Redis
prefix per run, created before and removed after, so a run leaves nothing behind."""

from __future__ import annotations

import asyncio
import dataclasses
import os

import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient

from services.common.settings import Settings
from services.persistence import migrate
from services.storage.cassandra_io import connect, execute


def bench_settings(run_id: str, name: str) -> Settings:
    """Settings from the environment (engine addresses) with names private to this run."""
    base = Settings.from_env()
    tag = f"bench_{run_id}_{name}"
    return dataclasses.replace(
        base,
        redis_prefix=f"{tag}:",
        kafka_topic=f"{tag}.messages",
        kafka_group=f"{tag}-persistence",
        cassandra_keyspace=tag,
    )


def service_env(settings: Settings) -> dict[str, str]:
    """The ``PARLEY_*`` variables that make a service process use these names."""
    return {
        "PARLEY_MODE": "cluster",
        "PARLEY_REDIS_URL": settings.redis_url,
        "PARLEY_REDIS_PREFIX": settings.redis_prefix,
        "PARLEY_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "PARLEY_KAFKA_TOPIC": settings.kafka_topic,
        "PARLEY_KAFKA_GROUP": settings.kafka_group,
        "PARLEY_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "PARLEY_CASSANDRA_HOSTS": settings.cassandra_hosts,
        "PARLEY_CASSANDRA_PORT": str(settings.cassandra_port),
        "PARLEY_CASSANDRA_KEYSPACE": settings.cassandra_keyspace,
    }


async def provision(settings: Settings) -> None:
    """The keyspace (with every migration) and the topic."""
    await migrate.run(settings)


async def remove(settings: Settings) -> None:
    """Drop the keyspace, delete the topics, delete the Redis keys of the prefix."""
    cluster, session = await connect(settings)
    try:
        await execute(session, f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}")
    finally:
        await asyncio.to_thread(cluster.shutdown)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        mine = (
            settings.kafka_topic,
            settings.kafka_topic + ".dlq",
            settings.kafka_topic + ".events",
        )
        topics = [t for t in mine if t in existing]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        batch = []
        async for key in redis.scan_iter(match=settings.redis_prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await redis.delete(*batch)
                batch.clear()
        if batch:
            await redis.delete(*batch)
    finally:
        await redis.aclose()


def run_id() -> str:
    return os.environ.get("BENCH_RUN_ID") or f"{os.getpid()}"
