"""A gateway whose Kafka is unreachable: the run reports ``unavailable`` failures by code and
exits non-zero."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_kafka_unreachable_fails_the_run(load, kafkaless_gateway):
    deadline = time.monotonic() + 60
    while True:  # /readyz stays 503 (no Kafka): wait until it serves at all
        try:
            if httpx.get(kafkaless_gateway.url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, kafkaless_gateway.tail()
        time.sleep(0.3)
    assert httpx.get(kafkaless_gateway.url + "/readyz", timeout=5).status_code == 503

    run = load("chatty", 3, seconds=6, host=kafkaless_gateway.url)
    assert run.code == 1, run.output[-3000:]
    failures = {(f["Method"], f["Name"]): int(f["Occurrences"]) for f in run.failures()}
    assert failures.get(("ack", "chat:message [unavailable]"), 0) > 0, failures
    assert run.counts.get("messages_acked", 0) == 0 and run.counts.get("delivered", 0) == 0
    assert any(p.startswith("failures:") for p in run.meta["problems"])
    assert "FAIL (exit code 1)" in (run.out / "summary.md").read_text()
