"""Interest-based fan-out between gateways over Redis pub/sub.

A pod subscribes only to the rooms its sockets are in: one channel per (namespace, room)
(``<base>#<namespace>#<room>``), subscribed when the first local socket enters the room and
unsubscribed when the last one leaves, plus one pod-wide channel (``<base>``) for what really
goes to everyone (an emit without a room: broadcasts, presence in scope ``all``). A pod with no
member in a room receives none of that room's messages (``parley_gateway_fanout_received_total``
counts what it does receive). Sid rooms and derived rooms (``#`` in the name: ``<room>#batch``)
are local only and never published.

An emit is published once, on its room's channel, as JSON in python-socketio's pub/sub envelope
(``{method: "emit", event, data, namespace, room, skip_sid, host_id}``, the same the presence
Lua scripts publish) — never pickle: a Redis write must not become code execution on every
gateway. The origin pod delivers to its own sockets directly and skips its own messages when
they come back.

Ordering and races: ``enter_room`` returns once Redis confirmed the subscription, so a
``room:join`` that subscribes and then reads history misses nothing in between (a message may
arrive both ways; clients de-duplicate by id, and ``since`` resync covers any gap). After a
Redis outage the listener reconnects within ``MAX_RETRY_S`` and subscribes every wanted
channel again; ``/readyz`` reports ``fanout`` unready meanwhile.

On a Redis Cluster (``PARLEY_REDIS_CLUSTER``) the room channels are shard channels:
``SPUBLISH`` here, ``SSUBSCRIBE`` through ``fanout_cluster.ShardedSubscriber`` (one connection
per node that owns a wanted channel), so a room's messages reach only the node owning its slot
and the pods subscribed there; the pod-wide channel stays classic pub/sub. The same listener
loop resubscribes everything after a lost node, a failover or a moved slot.

Room bookkeeping is indexed by sid (``sid -> rooms``), so a disconnect costs its own rooms, not
every room of the pod: a reconnect storm of N sockets is O(N), not O(N²).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from socketio.packet import Packet

from services.common.fanout_wire import room_channel
from services.common.model import RESERVED_ROOM_CHAR
from services.common.redis_io import AnyRedis, is_cluster, publish, redis_client
from services.common.retry import Backoff

from . import metrics
from .emit import DirectEmitManager
from .fanout_cluster import ShardedSubscriber

log = logging.getLogger("parley.gateway.fanout")
MAX_RETRY_S = 2.0
T = TypeVar("T")
OUTBOX_MAX = 10_000  # room messages waiting for their PUBLISH (Redis slow or away)
SUBSCRIBE_WAIT_S = 2.0  # a join waits at most this long for Redis to confirm a subscription


class FanoutManager(DirectEmitManager):
    listening = False

    def __init__(
        self, redis_url: str, channel: str, redis_options: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.redis_url = redis_url
        self.channel = channel  # the pod-wide channel; rooms are <channel>#<ns>#<room>
        self.redis_options = redis_options
        self.cluster = is_cluster(redis_options)  # room channels are shard channels
        self.host_id = uuid.uuid4().hex
        self._outbox: list[tuple[str, str]] = []  # (channel, payload) not yet PUBLISHed
        self._sender: asyncio.Future[None] | None = None
        self.redis: AnyRedis | None = None
        self._pubsub: Any = None
        self._wanted: set[str] = {channel}  # channels this pod should be subscribed to
        self._subscribed: set[str] = set()  # SUBSCRIBE sent on the current connection
        self._confirmed: set[str] = set()  # ... and confirmed by Redis
        self._confirm: dict[str, asyncio.Future[None]] = {}
        self._ready = asyncio.Event()  # the listener is subscribed
        self._sync_lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._sid_rooms: dict[tuple[str, str], set[Any]] = {}  # (namespace, sid) -> rooms

    # --- lifecycle -----------------------------------------------------------------------

    def initialize(self) -> None:
        super().initialize()
        self.connect_redis()
        self._listener = asyncio.ensure_future(self._listen_forever())

    def connect_redis(self) -> None:
        """The client for publishing and for the subscription (``redis_io`` options)."""
        if self.redis is None:
            self.redis = redis_client(self.redis_url, decode=False, options=self.redis_options)

    async def healthy(self) -> bool:
        return self.listening

    async def close(self) -> None:
        if self._sender is not None:  # what was accepted before the close still goes out
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._sender), 5)
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._pubsub is not None:  # on a cluster: its per-node readers and connections
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
        if self.redis is not None:
            await self.redis.aclose()

    # --- rooms: bookkeeping by sid, interest by room -------------------------------------

    def _channel_of(self, namespace: str, room: Any, sid: str | None = None) -> str | None:
        """The channel of a room, or None for what is never published (the namespace-wide
        room, sid rooms, derived rooms)."""
        if room is None or room == sid or not isinstance(room, str):
            return None
        if RESERVED_ROOM_CHAR in room or self.is_sid_room(namespace, room):
            return None
        return room_channel(self.channel, namespace, room)

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        new = room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._sid_rooms.setdefault((namespace, sid), set()).add(room)
        channel = self._channel_of(namespace, room, sid) if new else None
        if channel is not None:
            self._wanted.add(channel)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._sid_rooms.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._sid_rooms[(namespace, sid)]
        if room not in self.rooms.get(namespace, {}):
            channel = self._channel_of(namespace, room, sid)
            if channel is not None:
                self._wanted.discard(channel)

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        for room in list(self._sid_rooms.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        super().basic_disconnect(sid, namespace, **kwargs)  # nothing left to scan

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [r for r in self._sid_rooms.get((namespace, sid), ()) if r is not None]

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        await self._sync()

    async def leave_room(self, sid: str, namespace: str, room: Any) -> None:
        self.basic_leave_room(sid, namespace, room)
        await self._sync()

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        self.basic_disconnect(sid, namespace, **kwargs)
        await self._sync()

    async def _sync(self) -> None:
        """Bring the subscriptions to ``_wanted`` and wait (bounded) until Redis confirmed
        every wanted channel: a join that then reads history misses nothing in between. A
        pod whose listener is not subscribed yet (just started, or Redis away) waits for it
        as long; after that the join goes on and the client's ``since`` resync covers it."""
        if not self.listening:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), SUBSCRIBE_WAIT_S)
        pubsub = self._pubsub
        if not self.listening or pubsub is None:
            log.warning("fan-out not subscribed yet; a join goes on without its channel")
            return
        loop = asyncio.get_running_loop()
        async with self._sync_lock:
            add = self._wanted - self._subscribed
            drop = self._subscribed - self._wanted
            try:
                for channel in add:
                    self._confirm.setdefault(channel, loop.create_future())
                if add:
                    await pubsub.subscribe(*add)
                    self._subscribed |= add
                if drop:
                    await pubsub.unsubscribe(*drop)
                    self._subscribed -= drop
                    self._confirmed -= drop
            except Exception as exc:  # the listener notices and resubscribes everything
                log.warning("fan-out subscription change failed: %s", exc)
                return
        waits = [
            self._confirm.setdefault(c, loop.create_future())
            for c in self._wanted - self._confirmed
        ]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(asyncio.gather(*waits)), SUBSCRIBE_WAIT_S)

    # --- emit: publish once on the room's channel, deliver locally ------------------------

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        namespace = namespace or "/"
        room = to or room
        local_only = callback is not None or (
            room is not None and self._channel_of(namespace, room) is None
        )
        if local_only:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            return
        channel = self.channel if room is None else room_channel(self.channel, namespace, room)
        scope = "pod" if room is None else "room"
        envelope = self._envelope(event, data, namespace, room, skip_sid)
        if scope == "room" and not self.cluster:
            # Handed to the ordered publisher: PUBLISHed in this order, pipelined, without the
            # caller (an ack) waiting for the round trip, as socket.io's Redis adapter does.
            self._outbox.append((channel, json.dumps(envelope, separators=(",", ":"))))
            if self._sender is None:
                self._sender = asyncio.ensure_future(self._send_outbox())
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            return
        # The PUBLISH goes out first and its round trip overlaps the local writes (CPU only):
        # the emit takes max(round trip, local delivery), not their sum. _publish never raises.
        published = asyncio.ensure_future(self._publish(channel, envelope, scope))
        await asyncio.sleep(0)  # lets the publish write its command before the local work
        try:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
        finally:
            await published

    def _envelope(
        self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any
    ) -> dict[str, Any]:
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        binary = Packet.data_is_binary(args)
        if binary:
            plain, attachments = Packet.deconstruct_binary(args)
            args = [plain, *[base64.b64encode(a).decode() for a in attachments]]
        return {
            "method": "emit",
            "event": event,
            "data": args,
            "binary": binary,
            "namespace": namespace,
            "room": room,
            "skip_sid": skip_sid,
            "host_id": self.host_id,
        }

    async def _send_outbox(self) -> None:
        """The ordered publisher: everything handed over is PUBLISHed in order, in pipelines
        of whatever accumulated meanwhile (one round trip for many messages under load). A
        room's messages from one pod thus reach the other pods in the order they were accepted
        here. Bounded: past ``OUTBOX_MAX`` unsent messages (Redis unreachable) the oldest are
        dropped and counted as publish errors; those pods' clients resync."""
        try:
            while self._outbox:
                batch, self._outbox = self._outbox, []
                if len(batch) > OUTBOX_MAX:
                    metrics.REDIS_PUBLISH_ERRORS.inc(len(batch) - OUTBOX_MAX)
                    log.warning("fan-out outbox full: %d messages dropped", len(batch) - OUTBOX_MAX)
                    batch = batch[-OUTBOX_MAX:]
                await self._publish_batch(batch)
        finally:
            self._sender = None

    async def _publish_batch(self, batch: list[tuple[str, str]]) -> None:
        started = time.perf_counter()

        async def send() -> None:
            assert self.redis is not None, "fan-out not initialized"
            pipe = self.redis.pipeline(transaction=False)
            for channel, payload in batch:
                pipe.publish(channel, payload)
            await pipe.execute()

        try:
            await _twice(send)
            metrics.FANOUT_PUBLISHED.labels("room").inc(len(batch))
        except Exception as exc:  # local sockets had them; other pods' clients resync
            metrics.REDIS_PUBLISH_ERRORS.inc(len(batch))
            log.warning("fan-out publish of %d messages failed: %s", len(batch), exc)
        finally:
            metrics.REDIS_PUBLISH_SECONDS.observe(time.perf_counter() - started)

    async def _publish(self, channel: str, message: dict[str, Any], scope: str = "room") -> int:
        """PUBLISH, a second attempt after a connection error (a pooled connection that
        died with a Redis restart); returns the number of receiving pods, 0 on failure."""
        started = time.perf_counter()
        payload = json.dumps(message, separators=(",", ":"))

        async def send() -> int:
            assert self.redis is not None, "fan-out not initialized"
            if self.cluster and scope == "room":
                return int(await self.redis.spublish(channel, payload))
            return await publish(self.redis, channel, payload)

        try:
            receivers = await _twice(send)
            metrics.FANOUT_PUBLISHED.labels(scope).inc()
            return receivers
        except Exception as exc:  # local sockets still get it; other pods' clients resync
            metrics.REDIS_PUBLISH_ERRORS.inc()
            log.warning("fan-out publish on %s failed: %s", channel, exc)
            return 0
        finally:
            metrics.REDIS_PUBLISH_SECONDS.observe(time.perf_counter() - started)

    # --- receive ------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        backoff = Backoff(0.2, MAX_RETRY_S)
        while True:
            pubsub = None
            try:
                pubsub = await self._new_pubsub()
                async with self._sync_lock:
                    channels = set(self._wanted)
                    self._confirmed = set()
                    await pubsub.subscribe(*channels)
                    self._pubsub, self._subscribed = pubsub, channels
                self.listening = True
                self._ready.set()
                backoff.reset()
                log.info("fan-out listening on %s and %d rooms", self.channel, len(channels) - 1)
                asyncio.ensure_future(self._sync())  # what was wanted meanwhile
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        await self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any Redis or connection error: subscribe again
                if self.listening:
                    log.warning("fan-out lost Redis (%s); resubscribing", exc)
                self.listening = False
                self._ready.clear()
                self._pubsub, self._subscribed, self._confirmed = None, set(), set()
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                await asyncio.sleep(backoff.next())

    async def _new_pubsub(self) -> Any:
        """A fresh subscription: one connection (single Redis), or one per node with the
        cluster's slot map reloaded first (``ShardedSubscriber``)."""
        assert self.redis is not None, "fan-out not initialized"
        if isinstance(self.redis, RedisCluster):
            await ShardedSubscriber.refresh(self.redis)
            return ShardedSubscriber(self.redis, {self.channel}, self.redis_options)
        return self.redis.pubsub(ignore_subscribe_messages=False)

    async def _on_message(self, message: Mapping[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if kind == "subscribe":
            self._confirmed.add(str(channel))
            waiter = self._confirm.pop(str(channel), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return
        if kind != "message":
            return
        try:
            body = json.loads(message["data"])
        except (TypeError, ValueError):
            log.warning("dropped an undecodable fan-out message on %s", channel)
            return
        if not isinstance(body, dict) or body.get("host_id") == self.host_id:
            return  # ours: delivered locally already
        if body.get("method") != "emit" or not isinstance(body.get("event"), str):
            return
        metrics.FANOUT_RECEIVED.labels("pod" if channel == self.channel else "room").inc()
        data = body.get("data")
        if body.get("binary") and isinstance(data, list) and data:
            attachments = [base64.b64decode(a) for a in data[1:]]
            data = Packet.reconstruct_binary(data[0], attachments)
        if isinstance(data, list):
            data = None if not data else data[0] if len(data) == 1 else tuple(data)
        try:
            await DirectEmitManager.emit(
                self,
                body["event"],
                data,
                body.get("namespace") or "/",
                room=body.get("room"),
                skip_sid=body.get("skip_sid"),
            )
        except Exception:
            log.exception("local delivery of a fan-out message on %s failed", channel)


async def _twice(send: Callable[[], Awaitable[T]]) -> T:
    """``send()``, and once more after a connection error (a pooled connection that died with
    a Redis restart)."""
    try:
        return await send()
    except (RedisConnectionError, RedisTimeoutError):
        return await send()
