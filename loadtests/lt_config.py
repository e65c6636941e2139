"""Load-test settings: read once from ``PARLEY_LT_*`` environment variables into a frozen object.

Environment variables (not locust command-line options) so that the master, every worker
process and every Kubernetes pod read the same values from the same place (the shell, a
ConfigMap). Parsing fails fast and names the bad key. The README's "Load testing" section
documents the same defaults.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

Range = tuple[float, float]


class ConfigError(ValueError):
    """A ``PARLEY_LT_*`` value is malformed; the message names the variable."""


@dataclass(frozen=True)
class LoadConfig:
    # --- how users get tokens and connect ---
    auth: str = ""  # "tokens" or "register"; empty: tokens when a file is given, else register
    tokens_file: str = ""  # one JWT per line (loadtests/tokens.py makes one)
    workers: int = 1  # processes sharing the token file (worker i takes lines i, i+N, ...)
    transport: str = "mixed"  # "websocket", "polling" (then upgrade) or "mixed"
    polling_share: float = 0.25  # with "mixed": this share of users starts with long-polling
    room_prefix: str = ""  # empty: "lt" + random, so a run never reads an older run's rooms
    message_bytes: int = 120  # length of each chat:message text
    ack_timeout_s: float = 15.0
    connect_timeout_s: float = 15.0
    delivery_timeout_s: float = 10.0  # a recipient that got nothing by then: missing delivery

    # --- the scenarios (weights for the mixed run; think times "min-max" seconds) ---
    weight_chatty: int = 6
    weight_fanout: int = 1
    weight_storm: int = 1
    weight_history: int = 1
    weight_presence: int = 1
    chatty_rooms: int = 5
    chatty_rooms_per_user: int = 2
    chatty_think: Range = (1.5, 3.0)
    fanout_senders: int = 2  # per worker; every other fan-out user only listens
    fanout_think: Range = (1.0, 2.0)
    storm_rooms: int = 2
    storm_dwell: Range = (2.0, 5.0)  # connected this long, then disconnect
    storm_away: Range = (0.2, 1.5)  # away this long, then reconnect with `since`
    history_rooms: int = 2
    history_seed: int = 60  # readers post until the room has this many messages
    history_page: int = 20
    history_max_pages: int = 5
    history_think: Range = (0.6, 1.2)
    presence_rooms: int = 2
    presence_stay: Range = (2.0, 5.0)
    presence_away: Range = (0.5, 2.0)
    # the Server API publisher (``lt_api.py``; only with a key): posts into the chatty rooms
    api_key: str = field(default="", repr=False)  # a key with the publish scope
    weight_api: int = 1
    api_think: Range = (0.5, 1.0)

    # --- verdict: exit code 1 on failures, 3 on latency thresholds ---
    max_fail_ratio: float = 0.0
    min_delivery_ratio: float = 1.0
    # "<type>:<name>:p<NN>=<ms>" separated by commas; name "*" means every name of that type
    thresholds: str = (
        "deliver:chat:message:p95=1000,deliver:chat:message:p99=2500,"
        "ack:chat:message:p95=1000,connect:*:p95=3000"
    )
    worker_stats_dir: str = field(default="")  # tests: each worker writes what it measured

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LoadConfig:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            key = f"PARLEY_LT_{f.name.upper()}"
            if key in env:
                values[f.name] = _parse(key, env[key], f.default)
        config = cls(**values)  # type: ignore[arg-type]
        if not config.room_prefix:
            config = replace(config, room_prefix="lt" + uuid.uuid4().hex[:6])
        config.validate()
        return config

    @property
    def auth_mode(self) -> str:
        return self.auth or ("tokens" if self.tokens_file else "register")

    def validate(self) -> None:
        if self.auth_mode not in ("tokens", "register"):
            raise ConfigError(f"PARLEY_LT_AUTH: expected tokens or register, got {self.auth!r}")
        if self.auth_mode == "tokens" and not self.tokens_file:
            raise ConfigError("PARLEY_LT_TOKENS_FILE: required with PARLEY_LT_AUTH=tokens")
        if self.transport not in ("websocket", "polling", "mixed"):
            raise ConfigError(
                f"PARLEY_LT_TRANSPORT: expected websocket, polling or mixed, got {self.transport!r}"
            )
        if not 0 <= self.polling_share <= 1:
            raise ConfigError("PARLEY_LT_POLLING_SHARE: expected 0..1")
        if self.workers < 1:
            raise ConfigError("PARLEY_LT_WORKERS: must be at least 1")
        if not 1 <= self.message_bytes <= 5000:
            raise ConfigError("PARLEY_LT_MESSAGE_BYTES: expected 1..5000 (the server's cap)")
        if self.chatty_rooms_per_user > self.chatty_rooms:
            raise ConfigError("PARLEY_LT_CHATTY_ROOMS_PER_USER: more than PARLEY_LT_CHATTY_ROOMS")
        for name in ("chatty_rooms", "storm_rooms", "history_rooms", "presence_rooms"):
            if getattr(self, name) < 1:
                raise ConfigError(f"PARLEY_LT_{name.upper()}: must be at least 1")
        if self.api_key and len(self.api_key) < 24:
            raise ConfigError("PARLEY_LT_API_KEY: shorter than the server's 24 characters")
        parse_thresholds(self.thresholds)


def parse_thresholds(raw: str) -> list[tuple[str, str, float, float]]:
    """``"deliver:chat:message:p95=1000"`` → ``[("deliver", "chat:message", 95.0, 1000.0)]``."""
    out = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            spec, limit = item.split("=")
            kind, rest = spec.split(":", 1)
            name, pct = rest.rsplit(":", 1)
            if not pct.startswith("p"):
                raise ValueError(pct)
            out.append((kind, name, float(pct[1:]), float(limit)))
        except ValueError:
            raise ConfigError(
                f"PARLEY_LT_THRESHOLDS: expected <type>:<name>:p<NN>=<ms>, got {item!r}"
            ) from None
    return out


def _parse(key: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, tuple):
            low, _, high = raw.partition("-")
            pair = (float(low), float(high or low))
            if pair[0] < 0 or pair[1] < pair[0]:
                raise ValueError(raw)
            return pair
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        kind = "min-max seconds" if isinstance(default, tuple) else type(default).__name__
        raise ConfigError(f"{key}: expected {kind}, got {raw!r}") from None
    return raw
