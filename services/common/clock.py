"""The one clock of the services: wall-clock milliseconds since the epoch (ids, presence,
rate limits, deadlines). Pure rules take ``now`` as an argument; only the edges call this."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
