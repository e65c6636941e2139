"""Prometheus metrics of presence (the gateway's session updates and the presence service)."""

from prometheus_client import Counter, Gauge, Histogram

ANNOUNCEMENTS = Counter(
    "parley_presence_announcements_total",
    "presence:online/offline announcements sent.",
    ["kind"],
)
REAPED_SESSIONS_PODS = Counter(
    "parley_presence_pods_reaped_total", "Gateway pods whose heartbeat expired and were reaped."
)
REAPED_USERS = Counter(
    "parley_presence_users_reaped_offline_total",
    "Users who went offline because their last pod was reaped.",
)
ONLINE_USERS = Gauge("parley_presence_online_users", "Users announced online.")
SESSIONS = Gauge("parley_presence_sessions", "Live sessions on every pod.")
HEARTBEAT_LAG = Gauge(
    "parley_presence_heartbeat_lag_seconds",
    "Age of the oldest heartbeat among registered pods (a dead pod shows up here first).",
)
LEADER = Gauge("parley_presence_leader", "1 while this replica holds the reaper lease.")
OFFLINE_DETECTION_SECONDS = Histogram(
    "parley_presence_offline_detection_seconds",
    "For a reaped (crashed) pod: from its last heartbeat to the offline announcements of its "
    "users. Connect/disconnect announcements are published by the same Redis script that makes "
    "the transition, so they have no delay to measure.",
    buckets=(1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300),
)
