"""The one retry policy of the services: capped exponential backoff with jitter.

Each wait doubles from ``first`` up to ``cap``, and is drawn uniformly from the upper half of
its step ("equal jitter"): never zero, so a tight failure loop cannot spin, and spread out,
so pods that lost a backend together do not reconnect in lockstep. ``reset`` after a success.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(self, first: float, cap: float, rng: Callable[[], float] = random.random) -> None:
        if not 0 < first <= cap:
            raise ValueError("backoff needs 0 < first <= cap")
        self.first = first
        self.cap = cap
        self._rng = rng
        self._step = first
        self.attempts = 0

    def next(self) -> float:
        """The wait before the next attempt (seconds); doubles the step for the one after."""
        step = self._step
        self._step = min(self._step * 2, self.cap)
        self.attempts += 1
        return step / 2 + self._rng() * step / 2

    def reset(self) -> None:
        self._step = self.first
        self.attempts = 0
