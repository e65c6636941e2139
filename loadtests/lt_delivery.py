"""Delivery bookkeeping of one load-test process: who should get each message, who did.

Every room a process's users are in belongs to that process alone (room names carry the
worker index), so the members of a room at the moment a message is sent are known exactly
and the send timestamp in the payload and the receive time come from the same clock.

Rules (pure: every method takes ``now`` in milliseconds, nothing here does I/O):
- a message is *expected* by every member whose ``room:join`` was acked ``ok`` before the
  send, the sender included (the server echoes to the sender);
- the first copy a member gets is a *delivery*; more copies are *duplicates*;
- a member that leaves the room or disconnects before its copy came is *excused* (live
  delivery is best effort across a leave; resync covers reconnects);
- a copy reaching someone who was not a member at send time is *unexpected* (harmless: a
  join raced the send);
- an expected member with no copy ``timeout`` ms after the send is *missing*;
- a message acked with an error is dropped from the books (nothing was accepted).
The delivery ratio is deliveries / (deliveries + missing).

Resync: the ids acked ``ok`` in a room are kept (the newest ``keep`` per room), so a user that
rejoins with ``since`` can check that every message acked before its request and newer than
``since`` came back in ``room:history`` (the read-your-writes guarantee).
"""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict, deque
from dataclasses import dataclass, field

COUNTERS = (
    "messages_sent",
    "messages_acked",
    "messages_refused",
    "expected",
    "delivered",
    "missing",
    "duplicates",
    "excused",
    "unexpected",
    "resyncs",
    "resync_messages",
    "resync_missing",
    "resync_truncated",
)


@dataclass
class Pending:
    room: str
    sent_ms: float
    expected: set[int]
    got: set[int] = field(default_factory=set)


class DeliveryTracker:
    def __init__(self, keep: int = 2000, remember: int = 20000) -> None:
        self.members: dict[str, set[int]] = defaultdict(set)
        self.pending: dict[str, Pending] = {}
        self.finished: OrderedDict[str, set[int]] = OrderedDict()  # key -> who got it
        self.acked_ids: dict[str, deque[tuple[str, float]]] = defaultdict(
            lambda: deque(maxlen=keep)
        )
        self.remember = remember
        self.counts: Counter[str] = Counter()

    # --- membership ---------------------------------------------------------------------

    def join(self, member: int, room: str) -> None:
        self.members[room].add(member)

    def leave(self, member: int, room: str) -> None:
        self.members[room].discard(member)
        for p in self.pending.values():
            if p.room == room and member in p.expected and member not in p.got:
                p.expected.discard(member)
                self.counts["excused"] += 1

    def leave_all(self, member: int) -> None:
        for room in [r for r, m in self.members.items() if member in m]:
            self.leave(member, room)

    def size(self, room: str) -> int:
        return len(self.members[room])

    # --- messages -----------------------------------------------------------------------

    def sent(self, key: str, room: str, now: float) -> int:
        """Register a message before it is emitted; returns how many members expect it."""
        self.pending[key] = Pending(room, now, set(self.members[room]))
        self.counts["messages_sent"] += 1
        return len(self.pending[key].expected)

    def acked(self, key: str, room: str, message_id: str, now: float) -> None:
        self.counts["messages_acked"] += 1
        self.acked_ids[room].append((message_id, now))

    def refused(self, key: str) -> None:
        self.counts["messages_refused"] += 1
        self.pending.pop(key, None)

    def received(self, member: int, key: str) -> str:
        """``delivered`` (first copy), ``duplicate``, ``unexpected`` or ``foreign`` (not ours)."""
        p = self.pending.get(key)
        if p is None:
            got = self.finished.get(key)
            if got is None:
                return "foreign"
            if member in got:
                self.counts["duplicates"] += 1
                return "duplicate"
            self.counts["unexpected"] += 1
            return "unexpected"
        if member in p.got:
            self.counts["duplicates"] += 1
            return "duplicate"
        if member not in p.expected:
            self.counts["unexpected"] += 1
            return "unexpected"
        p.got.add(member)
        if p.got >= p.expected:
            self._finish(key)
        return "delivered"

    def sweep(self, now: float, timeout_ms: float) -> list[tuple[str, int]]:
        """Finish messages older than ``timeout_ms``: ``[(room, missing members), ...]``."""
        old = [k for k, p in self.pending.items() if now - p.sent_ms >= timeout_ms]
        return [r for r in (self._finish(k) for k in old) if r[1]]

    def finish_all(self) -> list[tuple[str, int]]:
        """The end of a run: every pending message is decided now."""
        return [r for r in (self._finish(k) for k in list(self.pending)) if r[1]]

    def _finish(self, key: str) -> tuple[str, int]:
        p = self.pending.pop(key)
        missing = len(p.expected - p.got)
        delivered = len(p.got & p.expected)
        self.counts["expected"] += delivered + missing
        self.counts["delivered"] += delivered
        self.counts["missing"] += missing
        self.finished[key] = p.got
        while len(self.finished) > self.remember:
            self.finished.popitem(last=False)
        return p.room, missing

    # --- resync -------------------------------------------------------------------------

    def resync_gap(
        self, room: str, since: str, requested_ms: float, ids: set[str], has_more: bool
    ) -> int:
        """How many messages acked ``ok`` before ``requested_ms`` with an id above ``since``
        are absent from the resync ``ids`` (0 when the server said ``hasMore``)."""
        self.counts["resyncs"] += 1
        self.counts["resync_messages"] += len(ids)
        if has_more:
            self.counts["resync_truncated"] += 1
            return 0
        gap = sum(
            1
            for mid, at in self.acked_ids[room]
            if mid > since and at <= requested_ms and mid not in ids
        )
        self.counts["resync_missing"] += gap
        return gap

    def take(self) -> dict[str, int]:
        """The counts since the last ``take`` (a worker reports deltas to the master)."""
        out = {k: v for k, v in self.counts.items() if v}
        self.counts.clear()
        return out


def delivery_ratio(counts: dict[str, int]) -> float | None:
    expected = counts.get("expected", 0)
    return None if expected == 0 else counts.get("delivered", 0) / expected
