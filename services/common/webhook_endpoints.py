"""Webhook endpoints as ``PARLEY_WEBHOOKS`` spells them (pure): comma-separated
``name|url|event+event|secret`` entries (``*`` for every event). Errors name the variable
and the endpoint, never the secret."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SettingsError

EVENTS = (
    "presence.online",
    "presence.offline",
    "room.member_joined",
    "room.member_left",
    "message.created",
    "message.read",
)
VAR = "PARLEY_WEBHOOKS"
MIN_SECRET_CHARS = 16
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    events: frozenset[str]
    secret: str = field(repr=False)

    def wants(self, event: str) -> bool:
        return event in self.events


def parse_endpoints(spec: str) -> tuple[Endpoint, ...]:
    endpoints: list[Endpoint] = []
    for n, entry in enumerate(filter(None, (e.strip() for e in spec.split(","))), 1):
        parts = [p.strip() for p in entry.split("|")]
        if len(parts) != 4:
            raise SettingsError(f"{VAR}: entry {n} is not name|url|event+event|secret")
        name, url, events_spec, secret = parts
        if not _NAME.match(name):
            raise SettingsError(f"{VAR}: entry {n}: bad name (letters, digits, _ -)")
        if not url.lower().startswith(("http://", "https://")):
            raise SettingsError(f"{VAR}: endpoint {name!r}: url must be http:// or https://")
        if events_spec == "*":
            events = frozenset(EVENTS)
        else:
            events = frozenset(e.strip() for e in events_spec.split("+") if e.strip())
        unknown = sorted(events - set(EVENTS))
        if not events or unknown:
            raise SettingsError(
                f"{VAR}: endpoint {name!r}: events must be * or some of {'+'.join(EVENTS)}"
            )
        if len(secret) < MIN_SECRET_CHARS:
            raise SettingsError(
                f"{VAR}: endpoint {name!r}: secret shorter than {MIN_SECRET_CHARS} characters"
            )
        if any(e.name == name for e in endpoints):
            raise SettingsError(f"{VAR}: endpoint {name!r} given twice")
        endpoints.append(Endpoint(name, url, events, secret))
    return tuple(endpoints)
