"""Fan-out between gateways: python-socketio's Redis manager, with a listener that comes back
fast after a Redis outage and says whether it is listening.

The stock listener retries with a backoff that grows to 60 s, so a gateway could stay deaf to
the other pods for a minute after Redis returns; here the wait is capped at
``MAX_RETRY_S``. ``listening`` is False from a receive error until the subscription is back,
and the gateway's ``/readyz`` reports it as the ``fanout`` check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import socketio

from services.common.redis_io import redis_client
from services.common.retry import Backoff

from . import metrics
from .emit import DirectEmitManager

log = logging.getLogger("parley.gateway.fanout")
MAX_RETRY_S = 2.0


class FanoutManager(socketio.AsyncRedisManager, DirectEmitManager):
    """Local delivery goes through ``DirectEmitManager.emit`` (it follows the pub/sub manager
    in the method resolution order)."""

    listening = False

    def _redis_connect(self) -> None:
        """One client for publishing and the subscription, on a blocking pool: a burst of
        emits waits for a connection instead of failing with "Too many connections".
        ``redis_options`` (the stock constructor argument): ``redis_io.redis_options``."""
        self.redis = redis_client(
            self.redis_url, decode=False, socket_timeout=None, options=self.redis_options
        )
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        backoff = Backoff(0.2, MAX_RETRY_S)
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    subscribed = True
                    self.listening = True
                    backoff.reset()
                    log.info("fan-out listening on %s", self.channel)
                async for message in self.pubsub.listen():
                    metrics.FANOUT_RECEIVED.inc()
                    yield message
            except Exception as exc:  # any Redis or connection error: resubscribe
                if self.listening:
                    log.warning("fan-out lost Redis (%s); resubscribing", exc)
                self.listening = False
                subscribed = False
                await asyncio.sleep(backoff.next())

    async def _publish(self, data: Any) -> Any:
        """The stock publish (two attempts; it logs and returns None when both fail), timed
        and counted."""
        started = time.perf_counter()
        result = await super()._publish(data)
        metrics.REDIS_PUBLISH_SECONDS.observe(time.perf_counter() - started)
        if result is None:
            metrics.REDIS_PUBLISH_ERRORS.inc()
        else:
            metrics.FANOUT_PUBLISHED.inc()
        return result

    async def healthy(self) -> bool:
        return self.listening
