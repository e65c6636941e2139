"""The Server API publisher: a backend service posting into the chatty rooms of its process
through ``parley_client.ParleyApi`` (the same client the tests and the lobby example use).

What it records: ``api`` / ``POST /rooms/{room}/messages`` (request → ``201``, a non-2xx is a
failure named ``POST /rooms/{room}/messages [<status> <error>]``). Each message carries the
same ``lt <key> <sent>`` text as a socket's, so the chatty users' deliveries of it are counted
and timed as ``deliver`` / ``chat:message`` (publish → delivery through the API path).

``parley_client`` is async (httpx): one asyncio loop per process runs forever in a greenlet
(gevent's patched selectors make its wait cooperative), and each user hands it a coroutine
and waits for the result on a ``concurrent.futures.Future`` (gevent-patched locks), so
requests of several users overlap and the socket users keep running meanwhile. It is
imported from the checkout (the repository root is put on ``sys.path``); the Kubernetes
load-test pods do not carry it, so this class runs only where ``PARLEY_LT_API_KEY`` is set
(``locustfile.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import gevent
from locust import User, between, task
from lt_user import CONFIG, TRACKER, now_ms, room_name, worker_index

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from parley_client import ApiError, ParleyApi  # noqa: E402

NAME = "POST /rooms/{room}/messages"
_publishers = itertools.count()
_loop: asyncio.AbstractEventLoop | None = None
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``coro`` on the process's asyncio loop; only the calling greenlet waits."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        gevent.spawn(_loop.run_forever)
    return asyncio.run_coroutine_threadsafe(coro, _loop).result(timeout)


class ApiPublisherUser(User):
    scenario = "api"
    weight = CONFIG.weight_api
    wait_time = between(*CONFIG.api_think)

    def on_start(self) -> None:
        self.n = next(_publishers)
        self.keys = (f"{CONFIG.room_prefix}.api.{worker_index(self.environment)}.{self.n}.{i}"
                     for i in itertools.count())  # fmt: skip
        self.api = ParleyApi(self.host, CONFIG.api_key, timeout=CONFIG.ack_timeout_s)

    def on_stop(self) -> None:
        run(self.api.aclose(), CONFIG.ack_timeout_s)

    def fire(self, name: str, started: float, exception: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type="api",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=exception,
            context={"scenario": self.scenario},
        )

    @task
    def publish(self) -> None:
        room = room_name(self.environment, "chatty", random.randrange(CONFIG.chatty_rooms))
        if TRACKER.size(room) == 0:
            return  # nobody there yet to count the delivery
        key = next(self.keys)
        sent = now_ms()
        text = f"lt {key} {sent:.3f} "
        text += "x" * max(0, CONFIG.message_bytes - len(text))
        TRACKER.sent(key, room, sent)
        started = time.perf_counter()
        try:
            message_id = run(
                self.api.publish(room, text, client_msg_id=key), CONFIG.ack_timeout_s + 1
            )
        except ApiError as exc:
            TRACKER.refused(key)
            self.fire(f"{NAME} [{exc.status} {exc.error}]", started, exc)
            return
        except Exception as exc:  # network: no answer, the message may or may not exist
            TRACKER.refused(key)
            self.fire(f"{NAME} [{type(exc).__name__}]", started, exc)
            return
        self.fire(NAME, started)
        TRACKER.acked(key, room, message_id, now_ms())
