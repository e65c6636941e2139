"""Webhook signatures (pure): HMAC-SHA256 over ``"<timestamp>.<body>"`` in one header,

    Parley-Signature: t=<unix seconds>,v1=<hex digest>

A receiver recomputes the digest with the endpoint's secret over the raw body, compares in
constant time, and refuses a timestamp more than ``TOLERANCE_S`` from its clock (a replayed
request carries an old one; the timestamp is signed, so it cannot be refreshed).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Parley-Signature"
DELIVERY_HEADER = "Parley-Delivery"  # stable per (endpoint, event): deduplicate on it
EVENT_HEADER = "Parley-Event"
TOLERANCE_S = 300


def digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={digest(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance: float = TOLERANCE_S
) -> bool:
    fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), digest(secret, timestamp, body))
