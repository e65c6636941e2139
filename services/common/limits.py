"""Rate-limit rules as settings spell them (pure): ``count/seconds`` and the
``event[@namespace]=count/seconds`` list of ``PARLEY_RATE_LIMITS``. Errors name the variable."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SettingsError


@dataclass(frozen=True)
class Limit:
    count: int
    window_ms: int


def parse_limits(spec: str) -> dict[tuple[str, str], Limit]:
    """``event[@namespace]=count/seconds`` entries, comma-separated."""
    limits: dict[tuple[str, str], Limit] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        try:
            name, rule = entry.split("=", 1)
            count, seconds = rule.split("/", 1)
            event, _, namespace = name.partition("@")
            limit = Limit(int(count), int(float(seconds) * 1000))
        except ValueError:
            raise SettingsError(
                f"PARLEY_RATE_LIMITS: bad entry {entry!r} (want event[@namespace]=count/seconds)"
            ) from None
        if limit.count < 1 or limit.window_ms < 1:
            raise SettingsError(f"PARLEY_RATE_LIMITS: count and window must be positive: {entry!r}")
        limits[(namespace or "/chat", event.strip())] = limit
    return limits


def parse_limit(rule: str, key: str) -> Limit:
    """One ``count/seconds`` rule (e.g. ``5/60``); errors name the variable ``key``."""
    try:
        count, seconds = rule.split("/", 1)
        limit = Limit(int(count), int(float(seconds) * 1000))
    except ValueError:
        raise SettingsError(f"{key}: expected count/seconds, e.g. 5/60, got {rule!r}") from None
    if limit.count < 1 or limit.window_ms < 1:
        raise SettingsError(f"{key}: count and window must be positive, got {rule!r}")
    return limit
