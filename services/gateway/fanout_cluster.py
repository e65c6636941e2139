"""The fan-out subscription on a Redis Cluster: room channels as shard channels.

On a single Redis a pod holds one pub/sub connection for everything. On a cluster a classic
``PUBLISH`` is copied to every node over the cluster bus, so room messages would cost
O(nodes) each and every node would carry every room; Redis 7's sharded pub/sub
(``SSUBSCRIBE`` / ``SPUBLISH``) keeps a channel on the node that owns its hash slot. So on a
cluster the room channels (``<base>#<ns>#<room>``) are shard channels, and the pod-wide
channel (broadcasts, presence announcements, which every pod needs anyway) stays classic.

redis-py 8.1's ``ClusterPubSub`` has ``ssubscribe``, but it reads the nodes in turn, each with
the caller's timeout, so a message on one node can wait behind an idle wait on another. This
class is the minimum the fan-out needs instead: one plain connection per node that owns a
wanted channel (``redis_io.node_client``, same ACL/TLS), routed by the channel's slot
(``SSUBSCRIBE`` of several channels goes per slot: Redis refuses a cross-slot one), one reader
task per node feeding one queue, and the ``PubSub`` surface ``FanoutManager`` uses
(``subscribe``, ``unsubscribe``, ``get_message``, ``aclose``; ``smessage`` / ``ssubscribe``
are reported as ``message`` / ``subscribe``).

Failure handling is the listener's: any error of a node connection — lost node, ``MOVED``
after a failover or a resharding, or a ``sunsubscribe`` Redis sends when a slot moves away —
is raised from ``get_message``; ``FanoutManager`` then drops this object, and the next one
reloads the cluster's slot map (``refresh``) and subscribes every wanted channel again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from services.common.redis_io import node_client

log = logging.getLogger("parley.gateway.fanout")

_KIND = {
    b"smessage": "message",
    b"message": "message",
    b"ssubscribe": "subscribe",
    b"subscribe": "subscribe",
}


class SlotMoved(RedisConnectionError):
    """Redis dropped a shard subscription we still want (its slot moved): resubscribe."""


class ShardedSubscriber:
    def __init__(
        self,
        cluster: RedisCluster,
        classic: Iterable[str],
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self._cluster = cluster
        self._classic = set(classic)  # channels kept as classic pub/sub (pod-wide)
        self._options = options
        self._nodes: dict[str, tuple[aioredis.Redis, Any]] = {}  # node name -> client, pubsub
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._queue: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._wanted: set[str] = set()
        self._leaving: dict[str, int] = defaultdict(int)  # SUNSUBSCRIBEs sent, not confirmed

    @staticmethod
    async def refresh(cluster: RedisCluster) -> None:
        """Reload the slot map (after MOVED, a lost node, a failover)."""
        await cluster.initialize()
        await cluster.nodes_manager.initialize()

    def _node_pubsub(self, host: str, port: int) -> Any:
        name = f"{host}:{port}"
        if name not in self._nodes:
            client = node_client(
                host, port, decode=False, socket_timeout=None, options=self._options
            )
            self._nodes[name] = (client, client.pubsub(ignore_subscribe_messages=False))
        return self._nodes[name][1]

    def _start_reader(self, host: str, port: int) -> None:
        """After the node's first (s)subscribe: redis-py's ``get_message`` needs the
        connection that command opened."""
        name = f"{host}:{port}"
        if name not in self._readers:
            pubsub = self._nodes[name][1]
            self._readers[name] = asyncio.create_task(
                self._read(name, pubsub), name=f"fanout-{name}"
            )

    def _node_of(self, channel: str) -> tuple[str, int]:
        node = self._cluster.get_node_from_key(channel)
        if node is None:
            raise RedisConnectionError(f"no cluster node serves the slot of {channel!r}")
        return node.host, int(node.port)

    async def subscribe(self, *channels: str) -> None:
        by_slot: dict[tuple[str, int, int], list[str]] = defaultdict(list)
        for channel in channels:
            self._wanted.add(channel)
            host, port = self._node_of(channel)
            slot = -1 if channel in self._classic else self._cluster.keyslot(channel)
            by_slot[(host, port, slot)].append(channel)
        for (host, port, slot), names in by_slot.items():
            pubsub = self._node_pubsub(host, port)
            if slot < 0:
                await pubsub.subscribe(*names)
            else:
                await pubsub.ssubscribe(*names)
            self._start_reader(host, port)

    async def unsubscribe(self, *channels: str) -> None:
        by_slot: dict[tuple[str, int, int], list[str]] = defaultdict(list)
        for channel in channels:
            self._wanted.discard(channel)
            host, port = self._node_of(channel)
            slot = -1 if channel in self._classic else self._cluster.keyslot(channel)
            by_slot[(host, port, slot)].append(channel)
        for (host, port, slot), names in by_slot.items():
            name = f"{host}:{port}"
            if name not in self._nodes:
                continue
            pubsub = self._nodes[name][1]
            if slot < 0:
                await pubsub.unsubscribe(*names)
            else:
                for channel in names:
                    self._leaving[channel] += 1
                await pubsub.sunsubscribe(*names)

    async def _read(self, name: str, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                kind = message.get("type")
                kind = kind if isinstance(kind, bytes) else str(kind).encode()
                channel = message.get("channel")
                text = channel.decode() if isinstance(channel, bytes) else str(channel)
                if kind == b"sunsubscribe":
                    if self._leaving.get(text, 0) > 0:  # ours (a leave), even if re-joined
                        self._leaving[text] -= 1
                    elif text in self._wanted:
                        raise SlotMoved(f"{name} dropped shard channel {text} (slot moved)")
                if kind in _KIND:
                    self._queue.put_nowait({**message, "type": _KIND[kind], "channel": text})
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the listener, which starts over
            self._queue.put_nowait(exc)

    async def get_message(self, timeout: float = 1.0) -> dict[str, Any] | None:
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        for task in self._readers.values():
            task.cancel()
        await asyncio.gather(*self._readers.values(), return_exceptions=True)
        for client, pubsub in self._nodes.values():
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()
        self._readers.clear()
        self._nodes.clear()
