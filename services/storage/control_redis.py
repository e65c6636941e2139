"""The Redis adapter of the ``control`` port (port and memory adapter: ``control.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.common.redis_io import AnyRedis, publish, redis_client
from services.common.retry import Backoff
from services.storage import metrics
from services.storage.control import Command, CommandHandler, dispatch

log = logging.getLogger("parley.gateway.control")


class RedisControlBus:
    """Redis pub/sub on ``<prefix>control``, with its own connection for the subscription.
    On a Redis Cluster it stays classic pub/sub (every pod needs every command), subscribed
    and published on the node that owns the channel's slot (``redis_io.publish``)."""

    def __init__(
        self,
        url: str,
        prefix: str,
        retry_max_s: float = 5.0,
        redis_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._url = url
        self._redis_options = redis_options
        self.channel = f"{prefix}control"
        self._retry_max = retry_max_s
        self._redis: AnyRedis | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self, on_command: CommandHandler) -> None:
        self._redis = redis_client(self._url, socket_timeout=None, options=self._redis_options)
        subscribed = asyncio.get_running_loop().create_future()
        self._listener = asyncio.create_task(
            self._listen(on_command, subscribed), name="control-bus"
        )
        # the first subscription normally takes milliseconds; a Redis outage must not hold
        # the gateway's startup: the listener keeps retrying on its own
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(subscribed), 5)

    async def _listen(self, on_command: CommandHandler, subscribed: asyncio.Future[Any]) -> None:
        assert self._redis is not None
        backoff = Backoff(0.2, self._retry_max)
        while True:
            delay = 0.0
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                if isinstance(self._redis, RedisCluster):  # the slot map picks the node
                    await self._redis.initialize()
                await pubsub.subscribe(self.channel)
                if not subscribed.done():
                    subscribed.set_result(None)
                backoff.reset()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        command = Command.decode(message["data"])
                    except ValueError as exc:
                        metrics.CONTROL_COMMANDS.labels("unknown", "malformed").inc()
                        log.warning("dropped a malformed control message: %s", exc)
                        continue
                    await dispatch(on_command, command)
            except (RedisError, OSError) as exc:
                delay = backoff.next()
                log.warning("control bus subscription lost (%s); retrying in %.1fs", exc, delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)

    async def publish(self, command: Command) -> int:
        if self._redis is None:
            raise Unavailable("control bus not started")
        try:
            return await publish(self._redis, self.channel, command.encode())
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
