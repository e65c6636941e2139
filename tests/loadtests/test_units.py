"""The pure parts of the load tests: delivery books, settings, verdict (no server, no locust)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from lt_config import ConfigError, LoadConfig, parse_thresholds
from lt_delivery import DeliveryTracker, delivery_ratio
from lt_verdict import verdict


def test_every_member_at_send_time_is_expected_and_counted_once():
    t = DeliveryTracker()
    for member in (1, 2, 3):
        t.join(member, "r")
    assert t.sent("k1", "r", now=0) == 3
    t.join(4, "r")  # joined after the send: not expected
    assert t.received(1, "k1") == "delivered"
    assert t.received(1, "k1") == "duplicate"
    assert t.received(4, "k1") == "unexpected"
    assert t.received(2, "k1") == "delivered"
    assert t.sweep(now=500, timeout_ms=1000) == []  # not due yet
    assert t.sweep(now=1000, timeout_ms=1000) == [("r", 1)]  # member 3 never got it
    counts = t.take()
    assert counts["expected"] == 3 and counts["delivered"] == 2 and counts["missing"] == 1
    assert counts["duplicates"] == 1 and counts["unexpected"] == 1
    assert delivery_ratio(counts) == pytest.approx(2 / 3)
    assert t.received(1, "k1") == "duplicate"  # a late copy after the books closed
    assert t.take() == {"duplicates": 1}


def test_a_member_that_leaves_is_excused_and_a_refused_message_is_dropped():
    t = DeliveryTracker()
    t.join(1, "r")
    t.join(2, "r")
    t.sent("k", "r", now=0)
    t.received(1, "k")
    t.leave(2, "r")
    t.sent("refused", "r", now=0)
    t.refused("refused")
    assert t.finish_all() == []
    counts = t.take()
    assert counts["excused"] == 1 and "missing" not in counts
    assert delivery_ratio(counts) == 1.0 and counts["messages_refused"] == 1
    assert delivery_ratio({}) is None


def test_resync_gap_counts_only_messages_acked_before_the_request():
    t = DeliveryTracker()
    t.acked("a", "r", "01A", now=10)
    t.acked("b", "r", "01B", now=20)
    t.acked("c", "r", "01C", now=40)  # acked after the rejoin was requested
    assert t.resync_gap("r", "01A", requested_ms=30, ids={"01B"}, has_more=False) == 0
    assert t.resync_gap("r", "00Z", requested_ms=30, ids={"01B"}, has_more=False) == 1
    assert t.resync_gap("r", "00Z", requested_ms=30, ids=set(), has_more=True) == 0
    counts = t.take()
    assert counts["resyncs"] == 3 and counts["resync_missing"] == 1
    assert counts["resync_truncated"] == 1


def test_settings_parse_and_fail_naming_the_key():
    c = LoadConfig.from_env({"PARLEY_LT_TOKENS_FILE": "t.txt", "PARLEY_LT_CHATTY_THINK": "1-2"})
    assert c.auth_mode == "tokens" and c.chatty_think == (1.0, 2.0)
    assert c.room_prefix.startswith("lt")
    assert LoadConfig.from_env({}).auth_mode == "register"
    for env, key in (
        ({"PARLEY_LT_CHATTY_THINK": "3-1"}, "PARLEY_LT_CHATTY_THINK"),
        ({"PARLEY_LT_USERS_X": "1", "PARLEY_LT_WORKERS": "x"}, "PARLEY_LT_WORKERS"),
        ({"PARLEY_LT_TRANSPORT": "smoke"}, "PARLEY_LT_TRANSPORT"),
        ({"PARLEY_LT_AUTH": "tokens"}, "PARLEY_LT_TOKENS_FILE"),
        ({"PARLEY_LT_THRESHOLDS": "deliver:p95"}, "PARLEY_LT_THRESHOLDS"),
    ):
        with pytest.raises(ConfigError, match=key):
            LoadConfig.from_env(env)
    assert parse_thresholds("deliver:chat:message:p99=2500,connect:*:p95=3000") == [
        ("deliver", "chat:message", 99.0, 2500.0),
        ("connect", "*", 95.0, 3000.0),
    ]


def entry(method, name, requests, failures, p95):
    return SimpleNamespace(
        method=method,
        name=name,
        num_requests=requests,
        num_failures=failures,
        get_response_time_percentile=lambda fraction: p95 if fraction <= 0.95 else p95 * 2,
    )


def stats(*entries):
    total = SimpleNamespace(
        num_requests=sum(e.num_requests for e in entries),
        num_failures=sum(e.num_failures for e in entries),
    )
    return SimpleNamespace(total=total, entries={(e.name, e.method): e for e in entries})


def test_verdict_exit_codes():
    config = LoadConfig.from_env({"PARLEY_LT_THRESHOLDS": "deliver:chat:message:p95=100"})
    ok = {"expected": 10, "delivered": 10}
    fast = entry("deliver", "chat:message", 10, 0, 50)
    slow = entry("deliver", "chat:message", 10, 0, 150)
    failed = entry("ack", "chat:message [unavailable]", 3, 3, 5)
    assert verdict(config, ok, stats(fast)) == (0, [])
    code, problems = verdict(config, ok, stats(slow))
    assert code == 3 and "p95 = 150 ms > 100 ms" in problems[0]
    assert verdict(config, ok, stats(fast, failed))[0] == 1
    assert verdict(config, {"expected": 10, "delivered": 9}, stats(fast))[0] == 1
    lenient = LoadConfig.from_env(
        {"PARLEY_LT_MAX_FAIL_RATIO": "0.5", "PARLEY_LT_MIN_DELIVERY_RATIO": "0.9"}
    )
    assert verdict(lenient, {"expected": 10, "delivered": 9}, stats(fast, failed))[0] == 0
