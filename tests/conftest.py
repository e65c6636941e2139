"""Test-session wiring: unique names per run so tests share the engines without restarts.

The engines (Redis, Kafka, Cassandra) are started once by ``make test`` through
``deploy/local/infra.sh``; integration and e2e tests connect to them on the local ports.
Every run uses its own Redis prefix, Kafka topic and group, and Cassandra keyspace.
"""

from __future__ import annotations

import os
import uuid

import pytest

from services.common.settings import Settings

RUN_ID = uuid.uuid4().hex[:8]
pytest_plugins = ["tests.support.system", "tests.support.stack", "tests.support.redis_cluster"]


@pytest.fixture(scope="session")
def engine_env() -> dict[str, str]:
    return {
        "PARLEY_MODE": "cluster",
        "PARLEY_REDIS_PREFIX": f"t{RUN_ID}:",
        "PARLEY_KAFKA_TOPIC": f"t{RUN_ID}.messages",
        "PARLEY_KAFKA_GROUP": f"t{RUN_ID}-persistence",
        "PARLEY_KAFKA_PARTITIONS": "3",
        "PARLEY_CASSANDRA_KEYSPACE": f"t{RUN_ID}",
        "PARLEY_LOG_LEVEL": "info",
        # cluster mode refuses the public development default and short secrets
        "PARLEY_JWT_SECRET": f"test-secret-{RUN_ID}-{uuid.uuid4().hex}",
    }


@pytest.fixture(scope="session")
def engine_settings(engine_env) -> Settings:
    return Settings.from_env({**os.environ, **engine_env})


@pytest.fixture(scope="session")
async def migrated(engine_settings) -> Settings:
    """The run's keyspace and topic, created once (also proves the migrate command works)."""
    from services.persistence import migrate

    await migrate.run(engine_settings)
    return engine_settings
