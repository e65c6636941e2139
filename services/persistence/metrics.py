"""Prometheus metrics of the persistence worker."""

from prometheus_client import Counter, Gauge, Histogram

STORED = Counter(
    "parley_persistence_messages_stored_total", "Messages written to the store (redeliveries too)."
)
POISON = Counter(
    "parley_persistence_poison_records_total",
    "Records that could not be decoded and went to the dead-letter topic.",
)
EXPIRED = Counter(
    "parley_persistence_expired_messages_total",
    "Messages the broker appended after their deadline: the gateway had acked unavailable.",
)
RETRIES = Counter("parley_persistence_write_retries_total", "Store writes retried after a failure.")
COMMITS_FAILED = Counter(
    "parley_persistence_commit_failures_total",
    "Offset commits refused (rebalance); the batch is redelivered and rewritten idempotently.",
)
BATCH_SECONDS = Histogram(
    "parley_persistence_batch_write_seconds", "Time to store one polled batch, retries included."
)
INGEST_SECONDS = Histogram(
    "parley_persistence_ingest_latency_seconds",
    "From message acceptance (its id time) to stored in the database.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
LAG = Gauge(
    "parley_persistence_consumer_lag_messages",
    "Records not yet stored, summed over this worker's partitions.",
)
PARTITION_LAG = Gauge(
    "parley_persistence_partition_lag_messages",
    "Records not yet stored, per partition assigned to this worker (high watermark - position).",
    ["partition"],
)
REBALANCES = Counter(
    "parley_persistence_rebalances_total",
    "Consumer group rebalances this worker took part in (partitions revoked, then assigned).",
)
ASSIGNED_PARTITIONS = Gauge(
    "parley_persistence_assigned_partitions", "Partitions of the topic assigned to this worker."
)

# --- Cassandra writes (per table: messages, room_buckets, read_receipts) ---------------------
from services.storage.metrics import (  # noqa: E402,F401  (recorded by the Cassandra store)
    CASSANDRA_WRITE_ERRORS,
    CASSANDRA_WRITE_SECONDS,
    CASSANDRA_WRITES,
    TABLES,
    write_error_kind,
)
