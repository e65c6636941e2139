"""``python -m services.persistence.migrate``: create the keyspace, apply CQL migrations in
order (recorded in ``schema_migrations``, so running it again is a no-op), and create the Kafka
topic with the configured partitions. Safe to run from several places at once: every
statement is ``IF NOT EXISTS``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.common.kafka_io import kafka_options
from services.common.settings import Settings
from services.storage.cassandra_io import connect, execute
from services.storage.events import events_topic

log = logging.getLogger("parley.migrate")
MIGRATIONS = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.cql$")


def migrations() -> list[tuple[int, str, list[str]]]:
    """``(version, name, statements)`` for every migration file, ascending."""
    found = []
    for path in sorted(MIGRATIONS.iterdir()):
        match = _NAME.match(path.name)
        if not match:
            continue
        text = "\n".join(
            line for line in path.read_text().splitlines() if not line.strip().startswith("--")
        )
        statements = [s.strip() for s in text.split(";") if s.strip()]
        found.append((int(match.group(1)), path.name, statements))
    return found


async def migrate_cassandra(settings: Settings) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    ks = settings.cassandra_keyspace
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,47}", ks):
        raise ValueError(f"PARLEY_CASSANDRA_KEYSPACE: not a valid keyspace name: {ks!r}")
    cluster, session = await connect(settings)
    try:
        await execute(
            session,
            f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
            f"{settings.cassandra_replication}",
        )
        await asyncio.to_thread(session.set_keyspace, ks)
        await execute(
            session,
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version int PRIMARY KEY, name text, applied_at timestamp)",
        )
        done = {row[0] for row in await execute(session, "SELECT version FROM schema_migrations")}
        applied = []
        for version, name, statements in migrations():
            if version in done:
                continue
            for statement in statements:
                await execute(session, statement)
            await execute(
                session,
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (version, name, datetime.now(UTC)),
            )
            applied.append(name)
            log.info("applied migration %s to keyspace %s", name, ks)
        await asyncio.to_thread(cluster.control_connection.wait_for_schema_agreement)
        return applied
    finally:
        await asyncio.to_thread(cluster.shutdown)


async def ensure_topics(settings: Settings) -> bool:
    """Create the messages topic and the events topic (``<topic>.events``: presence and
    membership transitions for webhooks) if missing; True if the messages topic was created."""
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = []
        if settings.kafka_topic not in existing:
            wanted.append(
                NewTopic(
                    name=settings.kafka_topic,
                    num_partitions=settings.kafka_partitions,
                    replication_factor=settings.kafka_replication,
                    # The broker stamps each record with its append time: the worker compares
                    # it with the record's deadline to drop records the gateway already
                    # refused (see worker).
                    topic_configs={"message.timestamp.type": "LogAppendTime"},
                )
            )
        events = events_topic(settings.kafka_topic)
        if events not in existing:
            wanted.append(
                NewTopic(
                    name=events,
                    num_partitions=settings.kafka_partitions,
                    replication_factor=settings.kafka_replication,
                )
            )
        if wanted:
            response = await admin.create_topics(wanted)
            for name, code, *rest in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"creating topic {name}: error {code} {rest}")
        return settings.kafka_topic not in existing
    finally:
        await admin.close()


async def run(settings: Settings, cassandra: bool = True, kafka: bool = True) -> None:
    if cassandra:
        applied = await migrate_cassandra(settings)
        print(
            f"cassandra keyspace {settings.cassandra_keyspace}: "
            f"{'applied ' + ', '.join(applied) if applied else 'up to date'}"
        )
    if kafka:
        created = await ensure_topics(settings)
        print(f"kafka topic {settings.kafka_topic}: {'created' if created else 'exists'}")
        print(f"kafka topic {events_topic(settings.kafka_topic)}: ensured")


def main() -> None:
    parser = argparse.ArgumentParser(description="Apply Parley's schema and create its topics.")
    parser.add_argument("--only", choices=["cassandra", "kafka"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    asyncio.run(run(settings, args.only in (None, "cassandra"), args.only in (None, "kafka")))


if __name__ == "__main__":
    main()
