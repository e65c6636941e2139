"""Settings of every Parley service, read once from ``PARLEY_*`` environment variables.

One frozen object for all roles (gateway, persistence worker, presence service): a service
reads the fields it needs and ignores the rest. Parsing fails fast and names the bad key.
Secrets never appear in ``repr``. The README's settings table documents the same defaults.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property

from .apikeys import ApiKey, parse_api_keys
from .errors import SettingsError
from .limits import Limit, parse_limit, parse_limits
from .netaddr import parse_networks
from .webhook_endpoints import Endpoint, parse_endpoints

MODES = ("cluster", "single")
# Accepted only in single-node mode (`make run` on a laptop); cluster mode refuses it.
DEV_JWT_SECRET = "parley-dev-secret-change-me-in-production"
MIN_HS256_SECRET_BYTES = 32  # RFC 7518 §3.2: a key at least as long as the hash output


@dataclass(frozen=True)
class Settings:
    # --- process ---
    mode: str = "cluster"  # "cluster" (Redis/Kafka/Cassandra) or "single" (embedded adapters)
    host: str = "127.0.0.1"
    port: int = 8000
    pod_id: str = ""  # unique per process; default hostname + a random boot suffix
    log_level: str = "info"
    # Origins allowed to open Socket.IO sessions and call /auth (comma-separated); "" = the
    # gateway's own origin only (the web client it serves); "*" = any origin, explicitly.
    cors_origins: str = ""
    cors_credentials: bool = False  # Access-Control-Allow-Credentials on allowed origins
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDRs, comma-
    # separated; "*" = any). Everyone else is keyed on its own address (per-IP limits).
    trusted_proxies: str = "127.0.0.1"
    metrics_port: int = 0  # > 0: /metrics only on this port (never routed by an ingress)
    # Graceful drain after SIGTERM (gateway): not ready at once, serve this long, then close
    # the clients' transports in jittered batches over drain_disconnect_seconds.
    drain_seconds: float = 10.0
    drain_disconnect_seconds: float = 5.0

    # --- auth ---
    jwt_secret: str = field(default=DEV_JWT_SECRET, repr=False)
    jwt_algorithm: str = "HS256"
    jwt_public_key: str = field(default="", repr=False)  # PEM, for RS256
    jwt_private_key: str = field(default="", repr=False)  # PEM, RS256: lets /auth/login sign
    jwt_leeway_seconds: int = 30
    jwt_audience: str = ""  # when set, tokens must carry this `aud` (and get it at login)
    jwt_issuer: str = ""  # when set, tokens must carry this `iss` (and get it at login)
    dev_token_ttl_seconds: int = 86400
    login_token_ttl_seconds: int = 86400  # lifetime of tokens from POST /auth/login
    login_rate_limit: str = "5/60"  # failed logins per (username, client IP) (count/seconds)
    login_user_rate_limit: str = "100/900"  # failed logins per username, all IPs (ceiling)
    login_ip_rate_limit: str = "20/60"  # login attempts per client IP (count/seconds)
    register_ip_rate_limit: str = "10/3600"  # registrations per client IP
    register_rate_limit: str = "100/60"  # registrations per gateway process, all clients
    hash_max_pending: int = 16  # bcrypt jobs waiting per process; more → 503 + Retry-After
    password_bcrypt_rounds: int = 12  # bcrypt cost (log2 rounds), 4..31

    # --- Redis: fan-out between gateways, presence ---
    redis_url: str = "redis://127.0.0.1:16379/0"
    redis_prefix: str = "parley:"  # every key and channel starts with it
    redis_cluster: bool = False  # PARLEY_REDIS_URL is one seed node of a Redis Cluster

    # --- Kafka: the durable log of accepted messages ---
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_topic: str = "parley.messages"
    kafka_partitions: int = 6
    kafka_replication: int = 1
    kafka_group: str = "parley-persistence"
    kafka_send_timeout_seconds: float = 5.0

    # --- Cassandra: message storage ---
    cassandra_hosts: str = "127.0.0.1"
    cassandra_port: int = 19042
    cassandra_keyspace: str = "parley"
    cassandra_replication: str = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    cassandra_timeout_seconds: float = 10.0

    # --- engine trust: authenticated, encrypted connections to Redis, Kafka, Cassandra ---
    # (one place turns them into client options: common/redis_io.py, common/kafka_io.py,
    # persistence/cassandra_io.py; README "Production checklist")
    redis_username: str = ""  # Redis ACL user (empty: the default user)
    redis_password: str = field(default="", repr=False)  # AUTH password
    redis_tls: bool = False  # TLS to Redis (a rediss:// URL also turns it on)
    redis_tls_ca_file: str = ""  # PEM CA bundle that signed Redis' certificate; empty: system CAs
    kafka_security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"  # or SCRAM-SHA-256, PLAIN
    kafka_username: str = ""
    kafka_password: str = field(default="", repr=False)
    kafka_tls_ca_file: str = ""  # PEM CA bundle for SSL / SASL_SSL; empty: system CAs
    cassandra_username: str = ""  # PasswordAuthenticator role
    cassandra_password: str = field(default="", repr=False)
    cassandra_tls: bool = False  # client-to-node encryption
    cassandra_tls_ca_file: str = ""  # PEM CA bundle; empty: system CAs

    # --- single-node mode ---
    sqlite_path: str = ".run/single/parley.db"

    # --- presence ---
    presence_ttl_seconds: float = 30.0  # a pod silent this long has its sessions reaped
    presence_heartbeat_seconds: float = 5.0
    presence_sweep_seconds: float = 2.0
    presence_grace_seconds: float = 3.0  # a user back within this is never announced offline
    presence_scope: str = "all"  # "all" or "rooms": who hears a user's presence

    # --- chat rules ---
    message_max_chars: int = 5000
    history_default_limit: int = 50
    history_max_limit: int = 100
    resync_cap: int = 500
    rate_limits: str = (
        "chat:message=10/10,chat:typing=2/1,chat:read=30/10,chat:file=5/60,"
        "room:join=60/10,chat:history=30/10"
    )
    max_rooms_per_socket: int = 100  # room:join beyond it → too_many_rooms
    slow_consumer_max_frames: int = 2000  # a socket with more frames queued is dropped
    # Engine.IO heartbeat: a ping every interval; no pong within the timeout ends the session
    ping_interval_seconds: int = 25
    ping_timeout_seconds: int = 20
    client_msg_id_ttl_seconds: int = 600

    # --- encryption at rest (off unless keys are given) ---
    encryption_keys: str = field(default="", repr=False)  # "id:base64(32 bytes),..."
    encryption_active_key: str = ""  # the id new values are sealed with; default: the first

    # --- attachments (chat:file) ---
    file_max_bytes: int = 5 * 1024 * 1024
    file_allowed_types: str = (
        "image/*,audio/*,video/*,text/plain,application/pdf,application/zip,"
        "application/octet-stream"
    )

    # --- /admin and the Socket.IO Admin UI ---
    admin_stats_seconds: float = 2.0  # how often a gateway reports to admin:stats (TTL 3x)
    admin_ui_username: str = "admin"
    admin_ui_password: str = field(default="", repr=False)  # empty: the Admin UI is off
    admin_ui_namespace: str = "/socketio-admin"  # never /admin, which is Parley's own
    admin_ui_dir: str = ""  # empty: <repo>/node_modules/@socket.io/admin-ui/ui/dist

    # --- Server API (/api/v1; off unless keys are given) ---
    api_keys: str = field(default="", repr=False)  # "name:key:scope+scope,..."
    api_rate_limit: str = "600/60"  # requests per API key (count/seconds)
    api_max_body_bytes: int = 64 * 1024  # larger request bodies → 413

    # --- webhooks (python -m services.webhooks; off unless endpoints are given) ---
    webhooks: str = field(default="", repr=False)  # "name|url|event+event|secret,..."
    webhook_group: str = "parley-webhooks"  # + ".<endpoint>": one consumer group each
    webhook_max_attempts: int = 8  # then the event goes to the dead-letter topic
    webhook_backoff_seconds: float = 0.5  # first retry delay (doubles, full jitter)
    webhook_backoff_max_seconds: float = 30.0
    webhook_timeout_seconds: float = 5.0  # per attempt
    webhook_dead_letter_topic: str = ""  # default: <kafka_topic>.webhooks-dead

    @property
    def single_node(self) -> bool:
        return self.mode == "single"

    # --- parsed once (validate() has parsed each already, so these never raise) ---

    @cached_property
    def event_limits(self) -> dict[tuple[str, str], Limit]:
        """``PARLEY_RATE_LIMITS`` by (namespace, event)."""
        return parse_limits(self.rate_limits)

    @cached_property
    def login_pair_limit(self) -> Limit:
        return parse_limit(self.login_rate_limit, "PARLEY_LOGIN_RATE_LIMIT")

    @cached_property
    def login_user_limit(self) -> Limit:
        return parse_limit(self.login_user_rate_limit, "PARLEY_LOGIN_USER_RATE_LIMIT")

    @cached_property
    def login_ip_limit(self) -> Limit:
        return parse_limit(self.login_ip_rate_limit, "PARLEY_LOGIN_IP_RATE_LIMIT")

    @cached_property
    def register_ip_limit(self) -> Limit:
        return parse_limit(self.register_ip_rate_limit, "PARLEY_REGISTER_IP_RATE_LIMIT")

    @cached_property
    def register_all_limit(self) -> Limit:
        return parse_limit(self.register_rate_limit, "PARLEY_REGISTER_RATE_LIMIT")

    @cached_property
    def api_key_list(self) -> tuple[ApiKey, ...]:
        """``PARLEY_API_KEYS``, parsed (empty: the Server API is off)."""
        return parse_api_keys(self.api_keys)

    @cached_property
    def webhook_endpoints(self) -> tuple[Endpoint, ...]:
        return parse_endpoints(self.webhooks)

    @property
    def webhook_dead_letters(self) -> str:
        return self.webhook_dead_letter_topic or self.kafka_topic + ".webhooks-dead"

    @cached_property
    def api_limit(self) -> Limit:
        return parse_limit(self.api_rate_limit, "PARLEY_API_RATE_LIMIT")

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [h.strip() for h in self.trusted_proxies.split(",") if h.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def socketio_channel(self) -> str:
        """The Redis pub/sub channel gateways fan Socket.IO emits out on."""
        return self.redis_prefix + "socketio"

    @property
    def redis_tls_enabled(self) -> bool:
        return self.redis_tls or self.redis_url.lower().startswith("rediss://")

    @property
    def cassandra_host_list(self) -> list[str]:
        return [h.strip() for h in self.cassandra_hosts.split(",") if h.strip()]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``PARLEY_<FIELD>`` variables; ``overrides`` win over the env."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            key = f"PARLEY_{f.name.upper()}"
            if f.name in overrides:
                values[f.name] = overrides[f.name]
            elif key in env:
                values[f.name] = _parse(key, env[key], f.default)
        settings = cls(**values)  # type: ignore[arg-type]
        if not settings.pod_id:
            boot = uuid.uuid4().hex[:6]
            settings = replace(settings, pod_id=f"{socket.gethostname()}-{boot}")
        settings.validate()
        return settings

    def require_strong_secret(self) -> None:
        """What a gateway checks before it serves (tokens are minted with this secret):
        outside single-node mode, HS256 needs a secret that is neither the public development
        default nor shorter than 32 bytes."""
        if self.jwt_algorithm != "HS256" or self.single_node:
            return
        if self.jwt_secret == DEV_JWT_SECRET:
            raise SettingsError(
                "PARLEY_JWT_SECRET: the public development default is refused outside "
                "single-node mode (anyone could mint admin tokens); set a random secret "
                "of at least 32 bytes, e.g. `openssl rand -base64 48`"
            )
        if len(self.jwt_secret.encode()) < MIN_HS256_SECRET_BYTES:
            raise SettingsError(
                f"PARLEY_JWT_SECRET: {len(self.jwt_secret.encode())} bytes is too short for "
                f"HS256 outside single-node mode; use at least {MIN_HS256_SECRET_BYTES}"
            )

    def _validate_engine_trust(self) -> None:
        """The engine credentials and TLS settings: complete pairs, known values, CA files
        that exist, nothing set that would be silently ignored."""

        def ca_file(key: str, path: str) -> None:
            if path and not os.path.isfile(path):
                raise SettingsError(f"{key}: no such file: {path!r}")

        scheme = self.redis_url.partition("://")[0].lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise SettingsError(
                f"PARLEY_REDIS_URL: expected redis://, rediss:// or unix://, got {scheme!r}"
            )
        if self.redis_username and not self.redis_password:
            raise SettingsError("PARLEY_REDIS_PASSWORD: required when PARLEY_REDIS_USERNAME is set")
        if self.redis_tls and scheme == "unix":
            raise SettingsError("PARLEY_REDIS_TLS: not possible with a unix:// PARLEY_REDIS_URL")
        if self.redis_tls_ca_file and not self.redis_tls_enabled:
            raise SettingsError(
                "PARLEY_REDIS_TLS_CA_FILE: set, but TLS is off "
                "(set PARLEY_REDIS_TLS=true or use a rediss:// PARLEY_REDIS_URL)"
            )
        ca_file("PARLEY_REDIS_TLS_CA_FILE", self.redis_tls_ca_file)
        if self.redis_cluster:
            if scheme == "unix":
                raise SettingsError(
                    "PARLEY_REDIS_CLUSTER: a Redis Cluster is reached over TCP; "
                    "PARLEY_REDIS_URL must be redis:// or rediss:// (one seed node)"
                )
            db = self.redis_url.partition("://")[2].partition("?")[0].partition("/")[2]
            if db not in ("", "0"):
                raise SettingsError(
                    f"PARLEY_REDIS_URL: a Redis Cluster has only database 0, got /{db} "
                    "(PARLEY_REDIS_CLUSTER=true)"
                )

        protocols = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if self.kafka_security_protocol not in protocols:
            raise SettingsError(
                f"PARLEY_KAFKA_SECURITY_PROTOCOL: expected one of {protocols}, "
                f"got {self.kafka_security_protocol!r}"
            )
        mechanisms = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
        if self.kafka_sasl_mechanism not in mechanisms:
            raise SettingsError(
                f"PARLEY_KAFKA_SASL_MECHANISM: expected one of {mechanisms}, "
                f"got {self.kafka_sasl_mechanism!r}"
            )
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not self.kafka_username:
            raise SettingsError(
                f"PARLEY_KAFKA_USERNAME: required with PARLEY_KAFKA_SECURITY_PROTOCOL="
                f"{self.kafka_security_protocol}"
            )
        if sasl and not self.kafka_password:
            raise SettingsError(
                f"PARLEY_KAFKA_PASSWORD: required with PARLEY_KAFKA_SECURITY_PROTOCOL="
                f"{self.kafka_security_protocol}"
            )
        if not sasl and (self.kafka_username or self.kafka_password):
            raise SettingsError(
                "PARLEY_KAFKA_USERNAME/PARLEY_KAFKA_PASSWORD: set, but "
                f"PARLEY_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} does not use "
                "them (use SASL_SSL)"
            )
        if self.kafka_tls_ca_file and self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            raise SettingsError(
                "PARLEY_KAFKA_TLS_CA_FILE: set, but PARLEY_KAFKA_SECURITY_PROTOCOL="
                f"{self.kafka_security_protocol} does not use TLS (use SSL or SASL_SSL)"
            )
        ca_file("PARLEY_KAFKA_TLS_CA_FILE", self.kafka_tls_ca_file)

        if self.cassandra_username and not self.cassandra_password:
            raise SettingsError(
                "PARLEY_CASSANDRA_PASSWORD: required when PARLEY_CASSANDRA_USERNAME is set"
            )
        if self.cassandra_password and not self.cassandra_username:
            raise SettingsError(
                "PARLEY_CASSANDRA_USERNAME: required when PARLEY_CASSANDRA_PASSWORD is set"
            )
        if self.cassandra_tls_ca_file and not self.cassandra_tls:
            raise SettingsError(
                "PARLEY_CASSANDRA_TLS_CA_FILE: set, but PARLEY_CASSANDRA_TLS is off"
            )
        ca_file("PARLEY_CASSANDRA_TLS_CA_FILE", self.cassandra_tls_ca_file)

    def validate(self) -> None:
        self._validate_engine_trust()
        if self.mode not in MODES:
            raise SettingsError(f"PARLEY_MODE: expected one of {MODES}, got {self.mode!r}")
        if self.jwt_algorithm not in ("HS256", "RS256"):
            raise SettingsError(
                f"PARLEY_JWT_ALGORITHM: expected HS256 or RS256, got {self.jwt_algorithm!r}"
            )
        if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
            raise SettingsError("PARLEY_JWT_PUBLIC_KEY: required when PARLEY_JWT_ALGORITHM=RS256")
        if self.jwt_algorithm == "HS256" and not self.jwt_secret:
            raise SettingsError("PARLEY_JWT_SECRET: must not be empty")

        parse_limit(self.login_rate_limit, "PARLEY_LOGIN_RATE_LIMIT")
        parse_limit(self.login_user_rate_limit, "PARLEY_LOGIN_USER_RATE_LIMIT")
        parse_limit(self.login_ip_rate_limit, "PARLEY_LOGIN_IP_RATE_LIMIT")
        parse_limit(self.register_ip_rate_limit, "PARLEY_REGISTER_IP_RATE_LIMIT")
        parse_limit(self.register_rate_limit, "PARLEY_REGISTER_RATE_LIMIT")
        parse_limits(self.rate_limits)
        parse_api_keys(self.api_keys)
        parse_limit(self.api_rate_limit, "PARLEY_API_RATE_LIMIT")
        if self.api_max_body_bytes < 1024:
            raise SettingsError("PARLEY_API_MAX_BODY_BYTES: must be at least 1024")
        parse_endpoints(self.webhooks)
        if self.webhook_max_attempts < 1:
            raise SettingsError("PARLEY_WEBHOOK_MAX_ATTEMPTS: must be positive")
        if not 0 < self.webhook_backoff_seconds <= self.webhook_backoff_max_seconds:
            raise SettingsError(
                "PARLEY_WEBHOOK_BACKOFF_SECONDS: must be positive and at most "
                "PARLEY_WEBHOOK_BACKOFF_MAX_SECONDS"
            )
        if self.webhook_timeout_seconds <= 0:
            raise SettingsError("PARLEY_WEBHOOK_TIMEOUT_SECONDS: must be positive")
        if self.drain_seconds < 0 or self.drain_disconnect_seconds < 0:
            raise SettingsError(
                "PARLEY_DRAIN_SECONDS / PARLEY_DRAIN_DISCONNECT_SECONDS: must not be negative"
            )
        if self.hash_max_pending < 1:
            raise SettingsError("PARLEY_HASH_MAX_PENDING: must be positive")
        if self.slow_consumer_max_frames < 1:
            raise SettingsError("PARLEY_SLOW_CONSUMER_MAX_FRAMES: must be positive")
        if self.ping_interval_seconds < 1 or self.ping_timeout_seconds < 1:
            raise SettingsError(
                "PARLEY_PING_INTERVAL_SECONDS / PARLEY_PING_TIMEOUT_SECONDS: at least 1"
            )
        if self.max_rooms_per_socket < 1:
            raise SettingsError("PARLEY_MAX_ROOMS_PER_SOCKET: must be positive")
        if not 0 <= self.metrics_port <= 65535 or (
            self.metrics_port and self.metrics_port == self.port
        ):
            raise SettingsError(
                f"PARLEY_METRICS_PORT: 0 or a port other than PARLEY_PORT, got {self.metrics_port}"
            )
        parse_networks(self.trusted_proxies, "PARLEY_TRUSTED_PROXIES")
        if not 4 <= self.password_bcrypt_rounds <= 31:
            raise SettingsError(
                f"PARLEY_PASSWORD_BCRYPT_ROUNDS: expected 4..31, got {self.password_bcrypt_rounds}"
            )
        if self.login_token_ttl_seconds < 1:
            raise SettingsError("PARLEY_LOGIN_TOKEN_TTL_SECONDS: must be positive")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"PARLEY_PORT: out of range: {self.port}")
        if self.presence_heartbeat_seconds * 2 > self.presence_ttl_seconds:
            raise SettingsError(
                "PARLEY_PRESENCE_TTL_SECONDS: must be at least twice "
                "PARLEY_PRESENCE_HEARTBEAT_SECONDS"
            )
        if self.presence_scope not in ("all", "rooms"):
            raise SettingsError(
                f"PARLEY_PRESENCE_SCOPE: expected all or rooms, got {self.presence_scope!r}"
            )
        if self.admin_stats_seconds <= 0:
            raise SettingsError("PARLEY_ADMIN_STATS_SECONDS: must be positive")
        if not self.admin_ui_namespace.startswith("/") or self.admin_ui_namespace in (
            "/",
            "/chat",
            "/notifications",
            "/admin",
        ):
            raise SettingsError(
                "PARLEY_ADMIN_UI_NAMESPACE: must start with / and not be a Parley namespace, "
                f"got {self.admin_ui_namespace!r}"
            )


def _parse(key: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        kind = type(default).__name__
        raise SettingsError(f"{key}: expected {kind}, got {raw!r}") from None
    return raw
