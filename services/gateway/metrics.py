"""Prometheus metrics of the gateway (no user or room ids as labels)."""

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge(
    "parley_gateway_connections", "Socket.IO sessions open on this pod.", ["namespace"]
)
HANDSHAKES_REFUSED = Counter(
    "parley_gateway_handshakes_refused_total", "Handshakes refused, by reason code.", ["code"]
)
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
CONTROL_COMMANDS = Counter(
    "parley_gateway_control_commands_total",
    "Control bus commands handled by this pod, by op and outcome.",
    ["op", "outcome"],
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
PASSWORD_HASH_BUSY = Counter(
    "parley_gateway_password_hash_busy_total",
    "Registrations and logins refused with 503 because the bcrypt queue was full",
)
DRAINING = Gauge(
    "parley_gateway_draining",
    "1 from SIGTERM until exit: not ready, clients being moved to other pods",
)
DRAIN_DISCONNECTS = Counter(
    "parley_gateway_drain_disconnects_total",
    "Transports closed by a drain so their clients reconnect elsewhere",
)
