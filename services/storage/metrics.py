"""Metrics the storage adapters record (the names keep the service that runs them: the
gateway appends to Kafka, the worker writes Cassandra). No user or room ids as labels."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
TABLES = ("messages", "room_buckets", "read_receipts")

KAFKA_APPEND_SECONDS = Histogram(
    "parley_gateway_kafka_append_seconds",
    "Time to append one record to Kafka (acks=all), failed appends included.",
    buckets=LATENCY_BUCKETS,
)
KAFKA_APPEND_ERRORS = Counter(
    "parley_gateway_kafka_append_errors_total",
    "Kafka appends that failed, by reason (not_connected, timeout, kafka_error).",
    ["reason"],
)
for _reason in ("not_connected", "timeout", "kafka_error"):
    KAFKA_APPEND_ERRORS.labels(_reason)
KAFKA_IN_FLIGHT = Gauge(
    "parley_gateway_kafka_appends_in_flight", "Kafka appends waiting for the brokers' ack."
)

CASSANDRA_WRITES = Counter(
    "parley_persistence_cassandra_writes_total",
    "Rows written to Cassandra (accepted), by table.",
    ["table"],
)
CASSANDRA_WRITE_SECONDS = Histogram(
    "parley_persistence_cassandra_write_seconds",
    "Time of one Cassandra write (a row, or an unlogged batch of one partition's rows), failed "
    "ones included, by table.",
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


CONTROL_COMMANDS = Counter(
    "parley_gateway_control_commands_total",
    "Control bus commands handled by this pod, by op and outcome.",
    ["op", "outcome"],
)

# the event log (events_kafka.py): presence and membership transitions for webhooks
EVENT_RECORDS = Counter(
    "parley_event_log_records_total",
    "Presence and membership events for webhooks, by type and outcome (sent, dropped)",
    ["type", "outcome"],
)
EVENT_QUEUED = Gauge("parley_event_log_queued", "Events waiting for Kafka in this process")
