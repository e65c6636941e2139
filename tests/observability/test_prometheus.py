"""A real Prometheus scraping the real ``make up`` stack (``make_up_stack``) while a short load
runs: every panel of both dashboards returns data, the throughput panels agree with what the
load generator counted, every /metrics passes ``promtool check metrics``, dashboards and rules
name only metrics the services expose, and a gateway cut off from Kafka turns the matching
error panels and alert expressions non-zero. The tests run in file order (one load, then the
checks that need its traffic, then the fault)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time

import httpx
import pytest

from services.gateway import metrics
from tests.observability import load
from tests.observability.queries import (
    alert_rules,
    concrete,
    metric_names,
    panel_queries,
    scraped_names,
)
from tests.support.procs import Service, free_port

pytestmark = pytest.mark.e2e
log = logging.getLogger("tests.observability")
WINDOW = 12.0  # seconds of steady load the throughput panels are compared over
FAULT_POD = "gateway-kafka-cut"
state: dict = {}


def by_title(title: str):
    found = [q for q in panel_queries() if q.panel == title]
    assert found, f"no panel {title!r}"
    return found


def processes(stack) -> dict[str, str]:
    return {
        "gateway-1": stack.gateway_urls[0],
        "gateway-2": stack.gateway_urls[1],
        "persistence": stack.worker_url,
        "presence": stack.presence_url,
    }


async def test_throughput_panels_agree_with_the_load_generator(make_up_stack, prometheus):
    counted = await load.run(make_up_stack.gateway_urls, make_up_stack.token, seconds=20)
    state["load"] = counted
    assert counted.errors == 0 and counted.accepted
    at = counted.ended - 2  # a window wholly inside the steady phase
    assert at - WINDOW > counted.started
    await asyncio.sleep(3)  # Prometheus has scraped past `at`
    received = counted.received_between(at - WINDOW, at) / WINDOW
    accepted = counted.accepted_between(at - WINDOW, at) / WINDOW
    (deliveries,) = by_title("Deliveries/s (/chat)")
    (messages,) = [q for q in by_title("Messages accepted/s") if q.expr.startswith("sum(")]
    got_deliveries = prometheus.values(concrete(deliveries.expr, f"{WINDOW:.0f}s"), at)
    got_accepted = prometheus.values(concrete(messages.expr, f"{WINDOW:.0f}s"), at)
    log.info(
        "deliveries/s: panel %s, load generator %.2f; accepted/s: panel %s, generator %.2f",
        got_deliveries,
        received,
        got_accepted,
        accepted,
    )
    assert received > 10
    assert len(got_deliveries) == 1 and got_deliveries[0] == pytest.approx(received, rel=0.10)
    assert len(got_accepted) == 1 and got_accepted[0] == pytest.approx(accepted, rel=0.10)


def test_every_panel_query_returns_data(prometheus):
    assert "load" in state, "needs the load of the previous test"
    empty = [
        f"{q}: {q.expr}" for q in panel_queries() if not prometheus.query(concrete(q.expr, "30s"))
    ]
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_promtool_check_metrics_is_clean_after_traffic(make_up_stack, promtool):
    assert "load" in state, "needs the load of the previous test"
    for name, url in processes(make_up_stack).items():
        text = httpx.get(url + "/metrics", timeout=10).text
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
            f"{name}: {result.stdout}{result.stderr}"
        )


def test_queries_name_only_metrics_the_services_expose(make_up_stack, prometheus):
    exposed: set[str] = set()
    for url in processes(make_up_stack).values():
        exposed |= scraped_names(httpx.get(url + "/metrics", timeout=10).text)
    for q in panel_queries():
        unknown = metric_names(concrete(q.expr)) - exposed
        assert not unknown, f"{q} names metrics no service exposes: {unknown}"
    synthetic = {"up"}  # made by Prometheus for every target
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - exposed - synthetic
        assert not unknown, f"{rule['alert']} names metrics no service exposes: {unknown}"
    assert prometheus.query('up{job="parley-gateway"}')
    # the ack-outcome metric exports every error code of the wire contract, from zero
    gateway = httpx.get(make_up_stack.gateway_urls[0] + "/metrics", timeout=10).text
    for outcome in metrics.outcomes():
        assert f'event="chat:message",outcome="{outcome}"' in gateway, outcome


ALERTS_ON_KAFKA_CUT = ("ParleyErrorAckRatioHigh", "ParleyKafkaAppendErrors", "ParleyGatewayUnready")
ERROR_PANELS_ON_KAFKA_CUT = (
    "Server-side error ratio",
    "Error acks/s",
    "Error acks by code",
    "Error acks by event",
    "Kafka append errors/s",
    "Gateways not ready",
)


def alert_expr(name: str) -> str:
    return next(r["expr"] for r in alert_rules() if r["alert"] == name)


async def test_kafka_cut_off_makes_error_panels_and_alerts_non_zero(make_up_stack, prometheus):
    assert "load" in state, "needs the load of the previous test"
    for name in ALERTS_ON_KAFKA_CUT:  # a healthy stack: the alert expressions are empty
        assert prometheus.query(alert_expr(name)) == [], name

    closed = free_port()  # nothing listens there: this gateway never reaches Kafka
    env = {
        **make_up_stack.env,
        "PARLEY_MODE": "cluster",
        "PARLEY_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed}",
        "PARLEY_KAFKA_SEND_TIMEOUT_SECONDS": "2",
        "PARLEY_POD_ID": FAULT_POD,
    }
    gateway = Service("gateway", FAULT_POD, env).start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(gateway.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{FAULT_POD} did not start:\n{gateway.tail()}"
            await asyncio.sleep(0.5)
        prometheus.add_target(FAULT_POD, "parley-gateway", FAULT_POD, gateway.port)
        assert prometheus.wait_for(f'up{{pod="{FAULT_POD}"}} == 1'), "not scraped"

        sio = await load.connect(gateway.url, make_up_stack.token("cut-user"), load.Counted())
        try:
            assert (await sio.call("room:join", "cut-room", namespace="/chat"))["status"] == "ok"
            for i in range(10):
                ack = await sio.call(
                    "chat:message", {"roomId": "cut-room", "text": f"x{i}"}, namespace="/chat"
                )
                assert ack.get("code") == "unavailable", ack
                await asyncio.sleep(0.2)
        finally:
            await sio.disconnect()
        await asyncio.sleep(3)  # scraped

        for title in ERROR_PANELS_ON_KAFKA_CUT:
            for q in by_title(title):
                values = prometheus.values(concrete(q.expr, "30s", pod=FAULT_POD))
                assert values and max(values) > 0, f"{q} is {values} with Kafka cut off"
        readiness = prometheus.query(concrete(by_title("Readiness checks")[0].expr, pod=FAULT_POD))
        assert {s["metric"]["check"]: s["value"][1] for s in readiness}["log"] == "0"
        for name in ALERTS_ON_KAFKA_CUT:
            result = prometheus.query(alert_expr(name))
            assert [s["metric"].get("pod") for s in result] == [FAULT_POD], f"{name}: {result}"
            assert float(result[0]["value"][1]) > 0 or name == "ParleyGatewayUnready"
        # and Prometheus's own rule evaluation has them pending (the `for` has not elapsed)
        deadline = time.monotonic() + 15
        while True:
            alerts = httpx.get(prometheus.url + "/api/v1/alerts", timeout=10).json()["data"][
                "alerts"
            ]
            active = {
                a["labels"]["alertname"] for a in alerts if a["labels"].get("pod") == FAULT_POD
            }
            if set(ALERTS_ON_KAFKA_CUT) <= active or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert set(ALERTS_ON_KAFKA_CUT) <= active, active
    finally:
        prometheus.remove_target(FAULT_POD)
        gateway.stop()
