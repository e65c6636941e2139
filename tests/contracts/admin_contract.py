"""Contracts of the ``/admin`` ports, for every adapter: the control bus and the stats board.

Subclasses provide ``bus`` / ``board`` fixtures; user and pod ids are unique per test so the
suites can share one Redis.
"""

from __future__ import annotations

import asyncio
import uuid

from services.storage.control import KICK, Command
from services.storage.stats import PodReport, aggregate


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


class ControlBusContract:
    async def test_a_published_command_reaches_the_subscriber(self, bus):
        got: list[Command] = []
        arrived = asyncio.Event()

        async def on_command(command: Command) -> None:
            got.append(command)
            arrived.set()

        await bus.start(on_command)
        try:
            command = Command(KICK, uid("mallory"), "pod-a")
            assert await bus.publish(command) >= 1
            await asyncio.wait_for(arrived.wait(), 5)
            assert got == [command]
        finally:
            await bus.close()

    async def test_a_failing_handler_does_not_stop_the_subscriber(self, bus):
        got: list[str] = []
        second = asyncio.Event()

        async def on_command(command: Command) -> None:
            got.append(command.user_id)
            if len(got) == 1:
                raise RuntimeError("boom")
            second.set()

        await bus.start(on_command)
        try:
            first, then = uid("u1"), uid("u2")
            await bus.publish(Command(KICK, first))
            await bus.publish(Command(KICK, then))
            await asyncio.wait_for(second.wait(), 5)
            assert got == [first, then]  # in publish order
        finally:
            await bus.close()


class StatsBoardContract:
    async def test_live_reports_until_their_ttl(self, board):
        pod = uid("pod")
        report = PodReport(pod, {"/chat": 2}, frozenset({"lobby"}), 1_000_000)
        await board.put(report, 5_000)
        assert report in await board.live(1_000_100)
        assert all(r.pod_id != pod for r in await board.live(1_005_001))

    async def test_a_newer_report_replaces_the_older_and_remove_withdraws_it(self, board):
        pod = uid("pod")
        await board.put(PodReport(pod, {"/chat": 1}, frozenset(), 2_000_000), 5_000)
        newer = PodReport(pod, {"/chat": 3}, frozenset({"a", "b"}), 2_001_000)
        await board.put(newer, 5_000)
        mine = [r for r in await board.live(2_001_500) if r.pod_id == pod]
        assert mine == [newer]
        await board.remove(pod)
        assert all(r.pod_id != pod for r in await board.live(2_001_500))

    async def test_reports_of_several_pods_add_up(self, board):
        a, b = uid("pod-a"), uid("pod-b")
        room = uid("room")
        await board.put(PodReport(a, {"/chat": 2}, frozenset({room}), 3_000_000), 5_000)
        await board.put(PodReport(b, {"/chat": 1}, frozenset({room}), 3_000_000), 5_000)
        mine = [r for r in await board.live(3_000_001) if r.pod_id in (a, b)]
        totals = aggregate(mine)
        assert (totals.connections, totals.rooms, totals.gateways) == (3, 1, 2)
