"""A short run of every scenario against the real ``make up`` stack, through nginx: no
failures, messages delivered to every member (ratio 1.0), the report written with its plots."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n"
REPORT_FILES = (
    "locust_stats.csv",
    "locust_stats_history.csv",
    "report.html",
    "summary.md",
    "locust_parley.json",
)
PLOTS = ("users.png", "messages.png", "deliveries.png", "latency.png")

# scenario: (users, extra settings)
SCENARIOS = {
    "chatty": (8, {"PARLEY_LT_CHATTY_ROOMS": "3", "PARLEY_LT_CHATTY_THINK": "1.2-2.5"}),
    "fanout": (12, {"PARLEY_LT_FANOUT_SENDERS": "2"}),
    "storm": (8, {"PARLEY_LT_STORM_DWELL": "2-4", "PARLEY_LT_STORM_AWAY": "0.2-1"}),
    # tokens the way a new client gets them: POST /auth/register + /auth/login (3 of the
    # stack's registrations per client IP)
    "history": (
        3,
        {
            "PARLEY_LT_AUTH": "register",
            "PARLEY_LT_HISTORY_ROOMS": "1",
            "PARLEY_LT_HISTORY_SEED": "5",
            "PARLEY_LT_HISTORY_PAGE": "2",
        },
    ),
    "presence": (6, {"PARLEY_LT_PRESENCE_STAY": "1-3", "PARLEY_LT_PRESENCE_AWAY": "0.3-1"}),
    "mixed": (10, {"PARLEY_LT_STORM_DWELL": "2-4", "PARLEY_LT_HISTORY_SEED": "4"}),
}


def check_common(run) -> None:
    assert run.code == 0, f"exit code {run.code}\n{run.output[-3000:]}"
    stats = run.stats()
    total = stats[("", "Aggregated")]
    assert int(total["Failure Count"]) == 0, run.failures()
    assert run.failures() == []
    counts = run.counts
    assert counts["messages_acked"] > 0
    assert counts["delivered"] > 0 and run.requests("deliver", "chat:message") > 0
    assert counts.get("missing", 0) == 0 and counts.get("duplicates", 0) == 0
    assert run.meta["delivery_ratio"] == 1.0
    assert run.meta["problems"] == []
    for name in REPORT_FILES:
        assert (run.out / name).stat().st_size > 0, name
    for name in PLOTS:
        data = (run.out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 1000, name
    summary = (run.out / "summary.md").read_text()
    assert "Verdict: pass" in summary and "delivery ratio | 1.000000" in summary
    history = (run.out / "locust_stats_history.csv").read_text()
    assert "deliver,chat:message," in history  # --csv-full-history: one row per name


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario_smoke(load, scenario):
    users, env = SCENARIOS[scenario]
    run = load(scenario, users, env=env)
    check_common(run)
    counts = run.counts
    connects = run.requests("connect", "websocket") + run.requests("connect", "polling")
    assert connects >= users
    if scenario == "chatty":
        assert run.requests("connect", "polling") > 0  # long-polling then upgrade
        assert run.requests("connect", "websocket") > 0
        assert run.requests("ack", "chat:typing") > 0
    if scenario == "fanout":
        # two senders, every member gets each message: many more deliveries than messages
        assert counts["delivered"] >= 5 * counts["messages_acked"]
    if scenario == "storm":
        assert counts["resyncs"] > 0 and counts.get("resync_missing", 0) == 0
        assert connects > users  # everyone came back at least once
        assert run.requests("history", "resync") > 0
    if scenario == "history":
        assert run.requests("http", "POST /auth/register") == users
        assert run.requests("http", "POST /auth/login") == users
        assert run.requests("ack", "chat:history") > 0
    if scenario == "presence":
        assert counts.get("recv:presence:online", 0) > 0
        assert counts.get("recv:chat:typing", 0) > 0
        assert run.requests("ack", "room:leave") > 0
    if scenario == "mixed":
        assert sorted(run.meta["user_classes"]) == [
            "ChattyUser",
            "FanoutUser",
            "HistoryUser",
            "PresenceUser",
            "StormUser",
        ]
