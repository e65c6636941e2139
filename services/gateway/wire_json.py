"""The JSON module of the Socket.IO wire (``AsyncServer(json=...)``).

Like engine.io's own, it refuses to build huge integers (parsing one is quadratic), but it
does not fail the whole packet: an integer literal longer than ``MAX_INT_DIGITS`` becomes
±infinity, a float that every validator rejects, so the event still reaches its handler and
gets a documented ``invalid_message`` ack instead of silently vanishing.
"""

from __future__ import annotations

import json
from json import JSONDecodeError, dumps  # noqa: F401  (the module interface engine.io uses)
from typing import Any

MAX_INT_DIGITS = 100


def _bounded_int(literal: str) -> int | float:
    if len(literal) > MAX_INT_DIGITS:
        return float("-inf") if literal.startswith("-") else float("inf")
    return int(literal)


def loads(*args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("parse_int", _bounded_int)
    return json.loads(*args, **kwargs)
