"""The Server API publisher of the load tests (``loadtests/lt_api.py``, through
``parley_client.ParleyApi``): a short run against a gateway of the stack's engines with API
keys, chatty socket users receiving what the API publishes."""

from __future__ import annotations

import secrets
import uuid

import pytest

from tests.support.procs import Service

from .test_smoke import check_common

pytestmark = pytest.mark.e2e
KEY = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def api_gateway(make_up_stack):
    env = {**make_up_stack.env, "PARLEY_MODE": "cluster", "PARLEY_API_KEYS": f"lt:{KEY}:publish"}
    gateway = Service("gateway", f"lt-api-{uuid.uuid4().hex[:6]}", env).start()
    try:
        yield gateway.wait_ready()
    finally:
        gateway.stop()


def test_the_api_publisher_posts_through_the_python_client_and_sockets_get_it(load, api_gateway):
    run = load(
        "api",
        6,
        host=api_gateway.url,
        env={
            "PARLEY_LT_API_KEY": KEY,
            "PARLEY_LT_WEIGHT_API": "1",
            "PARLEY_LT_WEIGHT_CHATTY": "2",
            "PARLEY_LT_CHATTY_ROOMS": "2",
            "PARLEY_LT_CHATTY_THINK": "2-3",
            "PARLEY_LT_API_THINK": "0.3-0.6",
        },
    )
    check_common(run)
    assert sorted(run.meta["user_classes"]) == ["ApiPublisherUser", "ChattyUser"]
    published = run.requests("api", "POST /rooms/{room}/messages")
    assert published > 0
    # every API message was acked and delivered to every member (check_run_ok: ratio 1.0,
    # no missing, no duplicate); more acks than the socket users alone sent
    assert run.counts["messages_acked"] >= published + run.requests("ack", "chat:message")


def test_the_api_scenario_needs_a_key(locust_python):
    import subprocess

    from .conftest import LOADTESTS

    done = subprocess.run(
        [locust_python, str(LOADTESTS / "run.py"), "--scenario", "api"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode != 0 and "PARLEY_LT_API_KEY" in done.stderr
