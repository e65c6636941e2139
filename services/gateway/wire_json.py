"""The JSON module of the Socket.IO wire (``AsyncServer(json=...)``).

Like engine.io's own, it refuses to build huge integers (parsing one is quadratic), but it
does not fail the whole packet: an integer literal longer than ``MAX_INT_DIGITS`` becomes
±infinity, a float that every validator rejects, so the event still reaches its handler and
gets a documented ``invalid_message`` ack instead of silently vanishing.

A document nested too deeply for the parser (``RecursionError``) does not fail the packet
either: an event packet ``["<event>", <too deep>...]`` decodes to ``["<event>", TOO_DEEP]``,
which the event guard answers with ``invalid_message`` (and logs once per socket); anything
else decodes to ``TOO_DEEP`` alone.
"""

from __future__ import annotations

import json
import re
from json import JSONDecodeError, dumps  # noqa: F401  (the module interface engine.io uses)
from typing import Any

MAX_INT_DIGITS = 100
_EVENT_NAME = re.compile(r'\[\s*("(?:[^"\\]|\\.){1,200}")\s*,')


class _TooDeep:
    """The value of a payload nested deeper than the parser goes."""

    def __repr__(self) -> str:
        return "TOO_DEEP"


TOO_DEEP: Any = _TooDeep()


def _bounded_int(literal: str) -> int | float:
    if len(literal) > MAX_INT_DIGITS:
        return float("-inf") if literal.startswith("-") else float("inf")
    return int(literal)


def loads(s: str | bytes, *args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("parse_int", _bounded_int)
    try:
        return json.loads(s, *args, **kwargs)
    except RecursionError:
        text = s if isinstance(s, str) else s.decode("utf-8", "replace")
        found = _EVENT_NAME.match(text)
        if found is None:
            return TOO_DEEP
        return [json.loads(found.group(1)), TOO_DEEP]
