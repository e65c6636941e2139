"""Prometheus metrics of the gateway (no user or room ids as labels).

The Socket.IO namespace is the label ``nsp`` (``/chat``, ...): ``namespace`` is the Kubernetes
namespace Prometheus attaches to every target.

Label values come from fixed sets (namespaces, event names, PROTOCOL.md error codes, reasons),
and the series an operator alerts on are created at zero up front (``track_event``, the
handshake codes, the HTTP route groups), so a rate of "no errors" is 0, not "no data".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from services.common.errors import Code
from services.storage.metrics import LATENCY_BUCKETS  # one set of latency buckets

NAMESPACES = ("/chat", "/notifications", "/admin")
TRANSPORTS = ("polling", "websocket")

# --- connections ---------------------------------------------------------------------------
CONNECTS = Counter(
    "parley_gateway_connects_total",
    "Socket.IO handshakes accepted, by Socket.IO namespace (nsp).",
    ["nsp"],
)
DIRECT_WRITES = Counter(
    "parley_gateway_direct_writes_total",
    "Room-emit deliveries written straight to a WebSocket transport (wsdirect.py), a part of "
    "parley_gateway_deliveries_total; the rest went through the socket's send queue.",
)
DISCONNECTS = Counter(
    "parley_gateway_disconnects_total",
    "Socket.IO sessions ended, by namespace and reason (client_disconnect, server_disconnect, "
    "ping_timeout, transport_close, transport_error, other).",
    ["nsp", "reason"],
)
DISCONNECT_REASONS = (
    "client_disconnect",
    "server_disconnect",
    "ping_timeout",
    "transport_close",
    "transport_error",
    "other",
)
HANDSHAKES_REFUSED = Counter(
    "parley_gateway_handshakes_refused_total", "Handshakes refused, by reason code.", ["code"]
)
HANDSHAKE_CODES = (
    "auth_required",
    "invalid_token",
    "token_expired",
    "invalid_subject",
    "token_revoked",
)
for _ns in NAMESPACES:
    CONNECTS.labels(_ns)
    for _reason in DISCONNECT_REASONS:
        DISCONNECTS.labels(_ns, _reason)
for _code in (*HANDSHAKE_CODES, Code.FORBIDDEN.value, Code.UNAVAILABLE.value):
    HANDSHAKES_REFUSED.labels(_code)


def connected(namespace: str) -> None:
    CONNECTS.labels(namespace).inc()


def disconnected(namespace: str, reason: object) -> None:
    label = str(reason or "other").replace(" ", "_")
    DISCONNECTS.labels(namespace, label if label in DISCONNECT_REASONS else "other").inc()


class ConnectionsCollector:
    """``parley_gateway_connections{nsp, transport}``, counted from the Socket.IO server
    at scrape time (a polling session that upgrades moves to ``websocket`` by itself)."""

    def __init__(self) -> None:
        self.server: Any = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "parley_gateway_connections",
            "Socket.IO sessions open on this pod, by namespace and Engine.IO transport.",
            labels=["nsp", "transport"],
        )
        counts = {(ns, t): 0 for ns in NAMESPACES for t in TRANSPORTS}
        server = self.server
        if server is not None:
            for _ in range(3):  # another thread may change the dicts while we count
                try:
                    counts = {(ns, t): 0 for ns in NAMESPACES for t in TRANSPORTS}
                    sockets = server.eio.sockets
                    for ns, rooms in list(server.manager.rooms.items()):
                        for eio_sid in list(rooms.get(None, {}).values()):
                            eio = sockets.get(eio_sid)
                            transport = (
                                "websocket" if eio is not None and eio.upgraded else "polling"
                            )
                            counts[(ns, transport)] = counts.get((ns, transport), 0) + 1
                    break
                except RuntimeError:
                    continue
        for (ns, transport), n in sorted(counts.items()):
            family.add_metric([ns, transport], n)
        yield family


CONNECTIONS = ConnectionsCollector()
REGISTRY.register(CONNECTIONS)


def watch(server: Any) -> None:
    """Count the sessions of this Socket.IO server in ``parley_gateway_connections``."""
    CONNECTIONS.server = server


DRAINING = Gauge(
    "parley_gateway_draining",
    "1 from SIGTERM until exit: /readyz answers 503 and clients are being moved off this pod.",
)

# --- delivery and fan-out ------------------------------------------------------------------
DELIVERIES = Counter(
    "parley_gateway_deliveries_total",
    "Event packets handed to sockets of this pod, by namespace (every recipient of a room "
    "emit counts once; chat:batch counts once per socket).",
    ["nsp"],
)
for _ns in NAMESPACES:
    DELIVERIES.labels(_ns)
FANOUT_PUBLISHED = Counter(
    "parley_gateway_fanout_published_total",
    "Fan-out messages this pod published to Redis, by scope (room: a room's channel; pod: "
    "the pod-wide channel).",
    ["scope"],
)
FANOUT_RECEIVED = Counter(
    "parley_gateway_fanout_received_total",
    "Fan-out messages from other pods this pod received and delivered, by scope (room: only "
    "rooms this pod has members in; pod: broadcasts).",
    ["scope"],
)
for _scope in ("room", "pod"):
    FANOUT_PUBLISHED.labels(_scope)
    FANOUT_RECEIVED.labels(_scope)
REDIS_PUBLISH_SECONDS = Histogram(
    "parley_gateway_redis_publish_seconds",
    "Time of one fan-out PUBLISH to Redis, retries included.",
    buckets=LATENCY_BUCKETS,
)
REDIS_PUBLISH_ERRORS = Counter(
    "parley_gateway_redis_publish_errors_total",
    "Fan-out publishes that failed (the emit did not reach the other pods).",
)

# --- the message log (Kafka) ---------------------------------------------------------------
from services.storage.metrics import (  # noqa: E402,F401  (recorded by storage adapters)
    CONTROL_COMMANDS,
    KAFKA_APPEND_ERRORS,
    KAFKA_APPEND_SECONDS,
    KAFKA_IN_FLIGHT,
)

# --- events and acks -----------------------------------------------------------------------
EVENTS = Counter(
    "parley_gateway_events_total",
    "Client events handled, by event and outcome.",
    ["event", "outcome"],
)
EVENT_SECONDS = Histogram(
    "parley_gateway_event_seconds",
    "Time from receiving a client event to its ack.",
    ["event"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MESSAGES_ACCEPTED = Counter(
    "parley_gateway_messages_accepted_total", "chat:message events acked ok (durable in the log)."
)
HANDLER_ERRORS = Counter(
    "parley_gateway_handler_errors_total", "Unexpected exceptions in event handlers (bugs)."
)
RATE_LIMITED = Counter(
    "parley_gateway_rate_limited_total",
    "Client events refused by a rate limit (acked rate_limited), by event.",
    ["event"],
)


def outcomes() -> list[str]:
    """Values of ``outcome`` in ``parley_gateway_events_total``: ``ok``, every error code of
    the wire contract, and ``error`` (an unexpected exception, acked ``unavailable``)."""
    return ["ok", *(code.value for code in Code), "error"]


def track_event(event: str) -> None:
    """Create the event's series at zero: one per ack outcome, its latency histogram, and its
    rate-limit refusals."""
    for outcome in outcomes():
        EVENTS.labels(event, outcome)
    EVENT_SECONDS.labels(event)
    RATE_LIMITED.labels(event)


# --- HTTP ------------------------------------------------------------------------------------
HTTP_RESPONSES = Counter(
    "parley_gateway_http_responses_total",
    "HTTP responses of the gateway's routes (Socket.IO excluded), by route group and status class.",
    ["route", "status"],
)
HTTP_ROUTES = {
    "auth": "auth",
    "files": "files",
    "healthz": "probes",
    "readyz": "probes",
    "metrics": "metrics",
    "admin-ui": "admin_ui",
    "api": "api",
}
for _route in {*HTTP_ROUTES.values(), "other"}:
    for _status in ("2xx", "3xx", "4xx", "5xx"):
        HTTP_RESPONSES.labels(_route, _status)


class HttpMetrics:
    """ASGI middleware counting ``parley_gateway_http_responses_total``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = HTTP_ROUTES.get(scope.get("path", "/").strip("/").split("/", 1)[0], "other")
        status = {"code": 500}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            HTTP_RESPONSES.labels(route, f"{min(max(status['code'] // 100, 2), 5)}xx").inc()


# --- /notifications, /admin, control bus -----------------------------------------------------
NOTIFICATIONS = Counter(
    "parley_gateway_notifications_total",
    "notification events sent (one per target room or user, not per socket), by type.",
    ["type"],
)
NOTIFICATION_ERRORS = Counter(
    "parley_gateway_notification_errors_total",
    "Accepted messages whose mention/dm notifications could not be sent (best effort).",
)
KICKED_SOCKETS = Counter(
    "parley_gateway_kicked_sockets_total", "Sockets this pod disconnected for admin:kick."
)
STATS_REPORT_ERRORS = Counter(
    "parley_gateway_stats_report_errors_total",
    "Failed writes of this pod's report to the admin:stats board.",
)

# --- HTTP auth (/auth/register, /auth/login) -------------------------------------------------
AUTH_REQUESTS = Counter(
    "parley_gateway_auth_requests_total",
    "POST /auth/register and /auth/login requests, by endpoint and outcome code.",
    ["endpoint", "outcome"],
)
PASSWORD_HASH_SECONDS = Histogram(
    "parley_gateway_password_hash_seconds",
    "Time of one bcrypt hash or check on a CPU thread, waiting for a thread included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INPUT_REFUSED = Counter(
    "parley_gateway_input_refused_total",
    "Sockets disconnected for breaking an input limit or sending an undecodable packet",
    ["reason"],
)
for _reason in ("input_limit", "parse_error"):
    INPUT_REFUSED.labels(_reason)
PASSWORD_HASH_BUSY = Counter(
    "parley_gateway_password_hash_busy_total",
    "Registrations and logins refused with 503 because the bcrypt queue was full",
)
DRAIN_DISCONNECTS = Counter(
    "parley_gateway_drain_disconnects_total",
    "Transports closed by a drain so their clients reconnect elsewhere",
)
SLOW_CONSUMERS = Counter(
    "parley_gateway_slow_consumers_dropped_total",
    "Sockets dropped because their send queue passed PARLEY_SLOW_CONSUMER_MAX_FRAMES",
)
