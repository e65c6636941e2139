"""Cluster statistics for ``admin:stats``: per-pod reports on a shared board, and the totals.

No gateway can see another's sockets, so each one periodically writes a report of its own
(sessions per namespace, the names of the chat rooms its sockets are in) to a board with a
TTL; ``admin:stats`` reads the live reports and adds them up. Room names are unioned, so a
room with members on several pods counts once. A crashed pod drops out when its report
expires. The rules (what a report holds, how reports add up) are pure functions; the board
is a port with a Redis adapter (cluster) and a memory adapter (single node, tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PodReport:
    pod_id: str
    connections: Mapping[str, int]  # namespace -> Socket.IO sessions on this pod
    rooms: frozenset[str]  # chat rooms with at least one socket of this pod
    at_ms: int

    def encode(self) -> str:
        body = {
            "pod": self.pod_id,
            "connections": dict(self.connections),
            "rooms": sorted(self.rooms),
            "at": self.at_ms,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, raw: str) -> PodReport:
        """Parse a stored report; raises ``ValueError`` on anything malformed."""
        try:
            body = json.loads(raw)
            connections = {str(k): int(v) for k, v in body["connections"].items()}
            return cls(str(body["pod"]), connections, frozenset(body["rooms"]), int(body["at"]))
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            raise ValueError(f"bad stats report: {exc}") from None


@dataclass(frozen=True)
class ClusterStats:
    connections: int
    namespaces: dict[str, int]
    rooms: int
    gateways: int


def chat_rooms(
    room_names: Iterable[object],
    sids: Iterable[str],
    derived: Iterable[Callable[[str], str]] = (),
) -> frozenset[str]:
    """The rooms worth counting among a namespace's Socket.IO rooms: not the namespace-wide
    room (``None``), not each socket's own sid room, not personal ``user:{id}`` rooms, and not
    the internal rooms ``derived`` from a counted one (``/chat``'s ``<room>#batch``)."""
    own = set(sids)
    names = {
        r for r in room_names if isinstance(r, str) and r not in own and not r.startswith("user:")
    }
    internal = {make(r) for r in names for make in derived}
    return frozenset(names - internal)


def aggregate(reports: Iterable[PodReport]) -> ClusterStats:
    """Totals over the newest report of each pod (a pod never counts twice)."""
    newest: dict[str, PodReport] = {}
    for report in reports:
        seen = newest.get(report.pod_id)
        if seen is None or report.at_ms > seen.at_ms:
            newest[report.pod_id] = report
    namespaces: dict[str, int] = {}
    rooms: set[str] = set()
    for report in newest.values():
        for ns, count in report.connections.items():
            namespaces[ns] = namespaces.get(ns, 0) + count
        rooms |= report.rooms
    return ClusterStats(
        sum(namespaces.values()), dict(sorted(namespaces.items())), len(rooms), len(newest)
    )


class StatsBoard(Protocol):
    """Where pods leave their reports.

    Guarantees: after ``put``, every gateway's ``live`` returns that report (or a newer one of
    the same pod) until ``ttl_ms`` has passed, then no longer; ``remove`` withdraws a pod's
    report at once (clean shutdown). Adapters raise ``Unavailable`` when the board is down.
    """

    async def put(self, report: PodReport, ttl_ms: int) -> None: ...

    async def live(self, now_ms: int) -> list[PodReport]: ...

    async def remove(self, pod_id: str) -> None: ...


class MemoryStatsBoard:
    def __init__(self) -> None:
        self._reports: dict[str, tuple[PodReport, int]] = {}  # pod -> (report, expires ms)

    async def put(self, report: PodReport, ttl_ms: int) -> None:
        self._reports[report.pod_id] = (report, report.at_ms + ttl_ms)

    async def live(self, now_ms: int) -> list[PodReport]:
        return [r for r, expires in self._reports.values() if expires > now_ms]

    async def remove(self, pod_id: str) -> None:
        self._reports.pop(pod_id, None)
