"""One contract for every ``PresenceStore`` adapter; subclasses provide ``presence``.

User ids and pod ids are unique per test so the suite can share one Redis.
"""

from __future__ import annotations

import asyncio
import uuid

from services.storage.presence import Session


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def online_ids(users) -> set[str]:
    return {u.user_id for u in users}


class PresenceStoreContract:
    async def test_first_session_goes_online_last_goes_offline(self, presence):
        alice = uid("alice")
        phone = Session(alice, "Alice", "s1", uid("podA"), "phone")
        laptop = Session(alice, "Alice", "s2", uid("podB"), "laptop")
        assert await presence.connect(phone, 1) is True
        assert await presence.connect(laptop, 2) is False
        assert alice in online_ids(await presence.online_users())
        state = await presence.user(alice)
        assert state.online and {d["sid"] for d in state.devices} == {"s1", "s2"}
        assert await presence.disconnect(phone, 3) is False
        assert alice in online_ids(await presence.online_users())
        assert await presence.disconnect(laptop, 4) is True
        assert alice not in online_ids(await presence.online_users())
        state = await presence.user(alice)
        assert not state.online and state.last_seen_ms == 4
        assert await presence.disconnect(laptop, 5) is False  # twice is harmless

    async def test_reaping_a_dead_pod_offlines_only_its_exclusive_users(self, presence):
        dead, alive = uid("dead"), uid("alive")
        only_dead, on_both = uid("carol"), uid("dave")
        await presence.heartbeat(dead, 1_000)
        await presence.heartbeat(alive, 1_000)
        await presence.connect(Session(only_dead, "Carol", "c1", dead), 1_000)
        await presence.connect(Session(on_both, "Dave", "d1", dead), 1_000)
        await presence.connect(Session(on_both, "Dave", "d2", alive), 1_000)
        await presence.heartbeat(alive, 50_000)
        pods = await presence.dead_pods(now_ms=50_000, ttl_ms=30_000)
        assert dead in pods and alive not in pods
        gone = await presence.reap_pod(dead, 50_000)
        assert [(u.user_id, u.username) for u in gone] == [(only_dead, "Carol")]
        online = online_ids(await presence.online_users())
        assert only_dead not in online and on_both in online
        assert dead not in await presence.dead_pods(now_ms=50_000, ttl_ms=30_000)

    async def test_concurrent_connects_and_disconnects_report_each_transition_once(self, presence):
        user = uid("flappy")
        pods = [uid("pod") for _ in range(3)]
        onlines = offlines = 0
        for round_ in range(30):
            sessions = [Session(user, "F", f"{round_}-{i}", pods[i % 3]) for i in range(6)]
            went_on = await asyncio.gather(*(presence.connect(s, round_) for s in sessions))
            went_off = await asyncio.gather(*(presence.disconnect(s, round_) for s in sessions))
            onlines += sum(went_on)
            offlines += sum(went_off)
        assert (onlines, offlines) == (30, 30)
        assert user not in online_ids(await presence.online_users())


class MembershipContract:
    async def test_membership_is_per_user_across_devices_and_ends_with_sessions(self, presence):
        user, room = uid("gina"), uid("room")
        phone = Session(user, "G", uid("sid"), uid("podA"))
        laptop = Session(user, "G", uid("sid"), uid("podB"))
        await presence.connect(phone, 1)
        await presence.connect(laptop, 1)
        assert not await presence.is_member(user, room)
        await presence.join_room(phone, room)
        assert await presence.is_member(user, room)  # the laptop may post too
        assert not await presence.is_member(uid("other"), room)
        await presence.leave_room(phone, room)
        assert not await presence.is_member(user, room)
        await presence.join_room(phone, room)
        await presence.join_room(laptop, room)
        await presence.disconnect(phone, 2)
        assert await presence.is_member(user, room)
        await presence.reap_pod(laptop.pod_id, 3)  # the laptop's pod crashed
        assert not await presence.is_member(user, room)


class AnnouncementContract:
    """Needs ``presence_with(grace_ms, scope="all")`` → ``(store, heard)``; ``heard()`` lists
    the ``(event, userId, room or None)`` announcements made so far, in order."""

    async def test_each_transition_is_announced_once_in_order(self, presence_with):
        presence, heard = await presence_with(0)
        user = uid("hugo")
        pods = [uid("pod") for _ in range(3)]
        for round_ in range(20):
            sessions = [Session(user, "H", f"{round_}-{i}", pods[i % 3]) for i in range(4)]
            await asyncio.gather(*(presence.connect(s, round_) for s in sessions))
            await asyncio.gather(*(presence.disconnect(s, round_) for s in sessions))
        mine = await settle(heard, user, 40)
        assert mine == ["presence:online", "presence:offline"] * 20

    async def test_grace_period_hides_flaps_and_then_announces_offline(self, presence_with):
        presence, heard = await presence_with(1000)
        user, pod = uid("iris"), uid("pod")
        first = Session(user, "I", uid("sid"), pod)
        assert await presence.connect(first, 0) is True
        assert await presence.disconnect(first, 100) is False  # pending, not offline
        assert user in online_ids(await presence.online_users())  # still listed in grace
        again = Session(user, "I", uid("sid"), pod)
        assert await presence.connect(again, 500) is False  # back within grace: no online
        await presence.disconnect(again, 600)
        assert await presence.sweep_pending(1500) == []  # grace runs until 1600
        gone = await presence.sweep_pending(1600)
        assert [u.user_id for u in gone] == [user]
        assert user not in online_ids(await presence.online_users())
        assert await settle(heard, user, 2) == ["presence:online", "presence:offline"]
        assert (await presence.user(user)).last_seen_ms == 1600

    async def test_heartbeat_reports_epoch_and_whether_the_pod_was_reaped(self, presence_with):
        presence, _ = await presence_with(0)
        pod = uid("pod")
        epoch, known = await presence.heartbeat(pod, 1)
        assert not known
        assert await presence.heartbeat(pod, 2) == (epoch, True)
        await presence.reap_pod(pod, 3)
        assert await presence.heartbeat(pod, 4) == (epoch, False)


async def settle(heard, user: str, expected: int, timeout: float = 5.0) -> list[str]:
    """The announcements about ``user``, once ``expected`` of them arrived (or the timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        mine = [event for event, who, *_ in heard() if who == user]
        if len(mine) >= expected or asyncio.get_running_loop().time() > deadline:
            await asyncio.sleep(0.1)
            return [event for event, who, *_ in heard() if who == user]
        await asyncio.sleep(0.05)


class ScopedContract:
    """Needs ``presence_with`` like ``AnnouncementContract``."""

    async def test_rooms_scope_announces_to_shared_rooms_only(self, presence_with):
        presence, heard = await presence_with(0, "rooms")
        ann, bob, cy = uid("ann"), uid("bob"), uid("cy")
        room, pod = uid("room"), uid("pod")
        sa, sb, sc = (Session(u, u, uid("sid"), pod) for u in (ann, bob, cy))
        for s in (sa, sb, sc):
            await presence.connect(s, 1)
        await presence.join_room(sa, room)
        await presence.join_room(sb, room)
        assert {u.user_id for u in await presence.scoped_online(ann)} == {ann, bob}
        assert {u.user_id for u in await presence.scoped_online(cy)} == {cy}
        await presence.disconnect(sb, 2)
        events = await settle_rooms(heard, 3)
        assert events == [
            ("presence:online", ann, room),
            ("presence:online", bob, room),
            ("presence:offline", bob, room),
        ]
        assert (await presence.online_users()) and bob not in {
            u.user_id for u in await presence.online_users()
        }


async def settle_rooms(heard, expected: int, timeout: float = 5.0) -> list:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(heard()) < expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    return heard()
