"""The base load-test user: one Parley ``/chat`` socket on locust's ``SocketIOUser``.

What it records as locust requests (``Type`` / ``Name`` in the report):
- ``connect`` / ``websocket`` or ``polling`` (long-polling, then upgrade): handshake to the
  ``/chat`` namespace accepted;
- ``ack`` / ``<event>``: emit → ack round trip of every event; an error ack is a failure named
  ``<event> [<code>]`` (``[timeout]`` when no ack came, ``[disconnected]`` when the socket was
  gone);
- ``deliver`` / ``chat:message``: send → delivery latency for every recipient, from the
  timestamp in the payload; ``[missing]`` and ``[duplicate]`` deliveries are failures;
- ``history`` / ``on join`` and ``resync``: ``room:join`` → ``room:history``; ``resync [gap]``
  is a failure (a message acked before the rejoin, newer than ``since``, did not come back);
- ``http`` / ``POST /auth/register``, ``POST /auth/login`` (register mode).

The contrib client's own ``call``/``connect`` wrappers record error acks as successes and
all transports under one name, so this class calls the underlying ``socketio.Client``
methods of the same client and fires its own events.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
import uuid
from collections import Counter, defaultdict

import gevent
import gevent.event
import socketio
from locust.contrib.socketio import SocketIOUser
from lt_auth import new_username, register_and_login, token_from_file
from lt_config import LoadConfig
from lt_delivery import DeliveryTracker

NS = "/chat"
CONFIG = LoadConfig.from_env()
TRACKER = DeliveryTracker()
_users = itertools.count()
_per_class: Counter[str] = Counter()
log = logging.getLogger("parley.loadtest")


class AckError(Exception):
    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(f"{code}: {text}" if text else code)
        self.code = code


def now_ms() -> float:
    return time.time() * 1000


def worker_index(environment) -> int:
    index = getattr(environment.runner, "worker_index", 0)
    return index if index >= 0 else 0


def room_name(environment, scenario: str, n: int) -> str:
    """Rooms belong to one process: its users are the only members, one clock for latency."""
    return f"{CONFIG.room_prefix}-w{worker_index(environment)}-{scenario}-{n}"


class ParleyUser(SocketIOUser):
    abstract = True
    options = {"reconnection": False}  # reconnects are the scenarios' business, and measured
    scenario = "base"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.n = next(_users)  # this process's n-th user (token line, rooms)
        self.k = _per_class[type(self).__name__]  # n-th user of this class (fan-out senders)
        _per_class[type(self).__name__] += 1
        self.worker = worker_index(self.environment)
        self.token = ""
        self.rooms: set[str] = set()
        self.last_seen: dict[str, str] = {}
        self.keys = (f"{CONFIG.room_prefix}.{self.worker}.{self.n}.{i}" for i in itertools.count())
        self._history: dict[str, gevent.event.AsyncResult] = defaultdict(gevent.event.AsyncResult)
        if CONFIG.transport == "mixed":  # spread evenly: user n polls when n*share crosses 1
            share = CONFIG.polling_share
            polls = int((self.n + 1) * share) > int(self.n * share)
            self.transport = "polling" if polls else "websocket"
        else:
            self.transport = CONFIG.transport
        self.sio.on("chat:message", self._on_message, namespace=NS)
        self.sio.on("room:history", self._on_history, namespace=NS)
        self.sio.on("*", self._on_other, namespace=NS)

    # --- recording ------------------------------------------------------------------------

    def fire(self, kind, name, started=None, *, elapsed_ms=None, length=0, exception=None):
        if elapsed_ms is None:
            elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=elapsed_ms,
            response_length=length,
            exception=exception,
            context={"scenario": self.scenario},
        )

    # --- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        if CONFIG.auth_mode == "tokens":
            self.token = token_from_file(CONFIG.tokens_file, self.worker, CONFIG.workers, self.n)
        else:
            self.token = register_and_login(
                self.host,
                new_username(CONFIG.room_prefix, self.worker, self.n),
                "lt-" + uuid.uuid4().hex,
                self.fire,
                CONFIG.connect_timeout_s,
            )
        self.connect()

    def on_stop(self) -> None:
        TRACKER.leave_all(id(self))
        self.rooms.clear()
        gevent.spawn(self._close)  # a stopping run must not wait on sockets closing

    def _close(self) -> None:
        try:
            socketio.Client.disconnect(self.sio)
        except Exception as exc:  # closing a dead socket; nothing to record
            log.debug("disconnect: %s", exc)

    @property
    def connected(self) -> bool:
        return self.sio.connected and NS in self.sio.namespaces

    def connect(self) -> bool:
        transports = ["websocket"] if self.transport == "websocket" else ["polling", "websocket"]
        started = time.perf_counter()
        exc = None
        try:
            socketio.Client.connect(
                self.sio,
                self.host,
                auth={"token": self.token},
                transports=transports,
                namespaces=[NS],
                wait_timeout=CONFIG.connect_timeout_s,
            )
        except Exception as e:
            exc = e
        self.fire("connect", self.transport, started, exception=exc)
        return exc is None

    def disconnect(self) -> None:
        TRACKER.leave_all(id(self))
        self._close()

    def reconnect(self) -> bool:
        """Connect again and rejoin every room with ``since`` (the client-side resync)."""
        rooms = sorted(self.rooms)
        self.rooms.clear()
        if not self.connect():
            self.rooms.update(rooms)
            return False
        for room in rooms:
            self.join(room, since=self.last_seen.get(room))
        return True

    def ensure_connected(self) -> bool:
        if self.connected:
            return True
        TRACKER.leave_all(id(self))  # dropped by the server: whatever was in flight is excused
        gevent.sleep(random.uniform(0.2, 1.0))
        return self.reconnect()

    # --- events sent ----------------------------------------------------------------------

    def ack(self, event: str, data: object) -> dict | None:
        """Emit with an ack; the round trip is recorded; returns the ``ok`` ack or None."""
        done = gevent.event.AsyncResult()
        started = time.perf_counter()
        try:  # socketio.Client.call would go through the contrib emit (a "WSE" record each)
            socketio.Client.emit(
                self.sio,
                event,
                data,
                namespace=NS,
                callback=lambda *args: done.set(args[0] if len(args) == 1 else list(args)),
            )
            reply = done.get(timeout=CONFIG.ack_timeout_s)
        except gevent.Timeout:
            self.fire("ack", f"{event} [timeout]", started, exception=AckError("timeout"))
            return None
        except socketio.exceptions.SocketIOError as exc:
            self.fire("ack", f"{event} [disconnected]", started, exception=exc)
            return None
        if isinstance(reply, dict) and reply.get("status") == "ok":
            self.fire("ack", event, started)
            return reply
        code = str(reply.get("code")) if isinstance(reply, dict) else "malformed"
        text = str(reply.get("error", "")) if isinstance(reply, dict) else repr(reply)[:80]
        self.fire("ack", f"{event} [{code}]", started, exception=AckError(code, text))
        return None

    def join(self, room: str, since: str | None = None) -> dict | None:
        """``room:join`` (with ``since``: a resync); returns the ``room:history`` payload."""
        payload: object = room if since is None else {"roomId": room, "since": since}
        waiter = self._history[room] = gevent.event.AsyncResult()
        requested = now_ms()
        started = time.perf_counter()
        if self.ack("room:join", payload) is None:
            return None
        TRACKER.join(id(self), room)
        self.rooms.add(room)
        name = "on join" if since is None else "resync"
        try:
            history, arrived = waiter.get(timeout=CONFIG.ack_timeout_s)
        except gevent.Timeout:
            self.fire("history", f"{name} [timeout]", started, exception=AckError("timeout"))
            return None
        messages = history.get("messages") or []
        elapsed = (arrived - started) * 1000
        self.fire("history", name, elapsed_ms=elapsed, length=len(messages))
        if since is not None:
            ids = {m["id"] for m in messages}
            if any(i <= since for i in ids):
                self.fire("history", "resync [order]", exception=AckError("order"))
            gap = TRACKER.resync_gap(room, since, requested, ids, bool(history.get("hasMore")))
            if gap:
                self.fire("history", "resync [gap]", exception=AckError("gap", f"{gap} missing"))
        return history

    def leave(self, room: str) -> None:
        TRACKER.leave(id(self), room)
        self.rooms.discard(room)
        self.ack("room:leave", room)

    def send(self, room: str) -> str | None:
        """A ``chat:message`` carrying its key and send time; returns the message id."""
        key = next(self.keys)
        sent = now_ms()
        text = f"lt {key} {sent:.3f} "
        text += "x" * max(0, CONFIG.message_bytes - len(text))
        TRACKER.sent(key, room, sent)
        reply = self.ack("chat:message", {"roomId": room, "text": text, "clientMsgId": key})
        if reply is None:
            TRACKER.refused(key)
            return None
        TRACKER.acked(key, room, reply["messageId"], now_ms())
        return reply["messageId"]

    def typing(self, room: str, is_typing: bool) -> None:
        self.ack("chat:typing", {"roomId": room, "isTyping": is_typing})

    def read(self, room: str) -> None:
        last = self.last_seen.get(room)
        if last is not None:
            self.ack("chat:read", {"roomId": room, "messageId": last})

    # --- events received (the client's read loop) -----------------------------------------

    def _seen(self, room: str, message_id: str) -> None:
        if message_id > self.last_seen.get(room, ""):
            self.last_seen[room] = message_id

    def _on_message(self, message: dict) -> None:
        arrived = now_ms()
        try:
            room, message_id, text = message["roomId"], message["id"], message["text"]
            _, key, sent, *_ = text.split(" ", 3)
            sent_ms = float(sent)
        except (KeyError, TypeError, ValueError):
            TRACKER.counts["recv:chat:message(other)"] += 1
            return
        self._seen(room, message_id)
        outcome = TRACKER.received(id(self), key)
        if outcome == "delivered":
            self.fire("deliver", "chat:message", elapsed_ms=arrived - sent_ms, length=len(text))
        elif outcome == "duplicate":
            self.fire("deliver", "chat:message [duplicate]", exception=AckError("duplicate"))

    def _on_history(self, history: dict) -> None:
        arrived = time.perf_counter()
        if not isinstance(history, dict):
            return
        room = history.get("roomId")
        for m in history.get("messages") or []:
            self._seen(room, m.get("id", ""))
        self._history[room].set((history, arrived))

    def _on_other(self, event: str, *args) -> None:
        TRACKER.counts[f"recv:{event}"] += 1
