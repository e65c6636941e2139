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
TABLES = ("messages", "room_buckets", "read_receipts")
CASSANDRA_WRITES = Counter(
    "parley_persistence_cassandra_writes_total",
    "Rows written to Cassandra (accepted), by table.",
    ["table"],
)
CASSANDRA_WRITE_SECONDS = Histogram(
    "parley_persistence_cassandra_write_seconds",
    "Time of one Cassandra row write, failed ones included, by table.",
    ["table"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CASSANDRA_WRITE_ERRORS = Counter(
    "parley_persistence_cassandra_write_errors_total",
    "Cassandra row writes that failed, by table and kind (timeout, unavailable, other).",
    ["table", "kind"],
)
for _table in TABLES:
    CASSANDRA_WRITES.labels(_table)
    CASSANDRA_WRITE_SECONDS.labels(_table)
    for _kind in ("timeout", "unavailable", "other"):
        CASSANDRA_WRITE_ERRORS.labels(_table, _kind)


def write_error_kind(exc: BaseException) -> str:
    """``timeout`` (the coordinator or the driver timed out), ``unavailable`` (not enough
    replicas, no host reachable, not connected) or ``other``, from the driver's exception."""
    cause = exc.__cause__ or exc
    name = type(cause).__name__
    if "Timeout" in name or "TimedOut" in name:
        return "timeout"
    if name in {"Unavailable", "NoHostAvailable", "ConnectionException", "ConnectionShutdown"}:
        return "unavailable"
    if cause is exc and "not connected" in str(exc):
        return "unavailable"
    return "other"
