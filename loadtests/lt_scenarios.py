"""The scenarios, one locust user class each; the mixed run is all of them by weight.

Weights and think times come from ``PARLEY_LT_*`` (``lt_config``). Per-user rates stay under
Parley's default per-user limits (10 ``chat:message`` / 10 s, 20 ``room:join`` and
``chat:history`` / 10 s, typing 2/s per room), so a failure in the report is the server's.
"""

from __future__ import annotations

import random
import time

import gevent
from locust import between, constant, task
from lt_user import CONFIG, TRACKER, ParleyUser, room_name


def pause(span: tuple[float, float]) -> None:
    gevent.sleep(random.uniform(*span))


class ChattyUser(ParleyUser):
    """Chatty rooms: a few shared rooms per user, messages at the think-time rate, typing,
    read receipts; every message fans out to the room."""

    scenario = "chatty"
    weight = CONFIG.weight_chatty
    wait_time = between(*CONFIG.chatty_think)

    def on_start(self) -> None:
        super().on_start()
        for j in range(CONFIG.chatty_rooms_per_user):
            self.join(room_name(self.environment, "chatty", (self.n + j) % CONFIG.chatty_rooms))

    def pick(self) -> str | None:
        return random.choice(sorted(self.rooms)) if self.rooms else None

    @task(8)
    def message(self) -> None:
        if self.ensure_connected() and (room := self.pick()):
            self.send(room)

    @task(2)
    def typing_then_message(self) -> None:
        if self.ensure_connected() and (room := self.pick()):
            self.typing(room, True)
            pause((0.3, 0.8))
            self.typing(room, False)

    @task(1)
    def read_receipt(self) -> None:
        if self.ensure_connected() and (room := self.pick()):
            self.read(room)


class FanoutUser(ParleyUser):
    """Large room fan-out: every fan-out user of a process joins one room; the first
    ``PARLEY_LT_FANOUT_SENDERS`` of them send, the others listen."""

    scenario = "fanout"
    weight = CONFIG.weight_fanout
    wait_time = between(*CONFIG.fanout_think)

    def on_start(self) -> None:
        super().on_start()
        self.room = room_name(self.environment, "fanout", 0)
        self.join(self.room)

    @task
    def step(self) -> None:
        if not self.ensure_connected():
            return
        if self.k < CONFIG.fanout_senders:
            self.send(self.room)


class StormUser(ParleyUser):
    """Connect storm: users disconnect and come back in waves (all of a process at the same
    wall-clock instants, every ``PARLEY_LT_STORM_DWELL`` max seconds): handshake, join,
    history, resync with ``since``; each posts one message per visit so there is something
    to resync."""

    scenario = "storm"
    weight = CONFIG.weight_storm
    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.room = room_name(self.environment, "storm", self.n % CONFIG.storm_rooms)
        self.join(self.room)

    @task
    def visit(self) -> None:
        if not self.ensure_connected():
            return
        pause((0.0, CONFIG.storm_dwell[0] / 2))
        self.send(self.room)
        wave = CONFIG.storm_dwell[1]
        gevent.sleep(max(CONFIG.storm_dwell[0] / 2, wave - time.time() % wave))
        self.disconnect()
        pause(CONFIG.storm_away)
        self.reconnect()


class HistoryUser(ParleyUser):
    """History readers: page ``chat:history`` back from the newest message until ``hasMore``
    is false or ``PARLEY_LT_HISTORY_MAX_PAGES``; readers first post until the room holds
    ``PARLEY_LT_HISTORY_SEED`` messages (at most one a second each)."""

    scenario = "history"
    weight = CONFIG.weight_history
    wait_time = between(*CONFIG.history_think)

    def on_start(self) -> None:
        super().on_start()
        self.room = room_name(self.environment, "history", self.n % CONFIG.history_rooms)
        history = self.join(self.room) or {}
        self.initial = len(history.get("messages") or [])

    @task
    def read_back(self) -> None:
        if not self.ensure_connected():
            return
        if self.initial + len(TRACKER.acked_ids[self.room]) < CONFIG.history_seed:
            self.send(self.room)
            gevent.sleep(1.0)
            return
        before = None
        for _ in range(CONFIG.history_max_pages):
            page = {"roomId": self.room, "limit": CONFIG.history_page}
            if before is not None:
                page["before"] = before
            reply = self.ack("chat:history", page)
            if reply is None:
                return
            ids = [m["id"] for m in reply.get("messages") or []]
            if ids != sorted(ids) or (before is not None and ids and ids[-1] >= before):
                self.fire("ack", "chat:history [order]", exception=ValueError("page out of order"))
            if not reply.get("hasMore") or not ids:
                return
            before = ids[0]
            pause(CONFIG.history_think)


class PresenceUser(ParleyUser):
    """Presence churn: users come online, join, type, say something, leave and go offline;
    everyone else gets ``presence:online``/``offline``, ``room:user-joined``/``left`` and
    ``chat:typing`` (counted in the summary)."""

    scenario = "presence"
    weight = CONFIG.weight_presence
    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.room = room_name(self.environment, "presence", self.n % CONFIG.presence_rooms)

    @task
    def come_and_go(self) -> None:
        if not self.connected and not self.connect():
            pause(CONFIG.presence_away)
            return
        if self.join(self.room) is None:
            return
        self.typing(self.room, True)
        pause((0.2, 0.6))
        self.send(self.room)
        self.typing(self.room, False)
        pause(CONFIG.presence_stay)
        self.leave(self.room)
        self.disconnect()
        pause(CONFIG.presence_away)


SCENARIOS = {
    "chatty": [ChattyUser],
    "fanout": [FanoutUser],
    "storm": [StormUser],
    "history": [HistoryUser],
    "presence": [PresenceUser],
    "mixed": [ChattyUser, FanoutUser, StormUser, HistoryUser, PresenceUser],
}
