"""Dashboards and rules checked without a running system: promtool on the rules and their unit
tests, the committed JSON equal to a fresh generation, every query parsing as PromQL, and the
ack-outcome metric covering every error code of PROTOCOL.md."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from services.gateway import metrics
from tests.observability.queries import alert_rules, concrete, metric_names, panel_queries
from tests.support.procs import ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules(promtool):
    result = run(promtool, "check", "rules", "deploy/prometheus/rules/parley.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_rule_unit_tests(promtool):
    """Each alert fires on its bad series and stays silent on the good ones."""
    result = run(promtool, "test", "rules", "deploy/prometheus/tests/parley.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(
        re.findall(
            r"alertname: (\w+)",
            (ROOT / "deploy/prometheus/tests/parley.rules.test.yml").read_text(),
        )
    )
    assert tested == {r["alert"] for r in alert_rules()}, "an alert without a unit test"


def test_committed_dashboards_and_chart_copies_are_freshly_generated():
    result = run(sys.executable, "deploy/grafana/generate.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_have_stable_uids_variables_and_units():
    import json

    for path in sorted((ROOT / "deploy/grafana").glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"] == path.stem
        assert [v["name"] for v in board["templating"]["list"]] == [
            "datasource",
            "namespace",
            "pod",
        ]
        rows = [p for p in board["panels"] if p["type"] == "row"]
        assert not rows[0].get("collapsed") and all(r["collapsed"] for r in rows[1:])
        for row in rows[1:]:
            for panel in row["panels"]:
                assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
                assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"], panel["title"]


def test_every_panel_query_parses_as_promql():
    queries = panel_queries()
    assert len(queries) > 40
    for q in queries:
        assert "$namespace" in q.expr and "$pod" in q.expr, f"{q} ignores the variables"
        try:
            assert metric_names(concrete(q.expr)), f"{q} selects no metric"
        except ValueError as exc:
            pytest.fail(f"{q} does not parse: {exc}\n{q.expr}")


def test_every_alert_has_summary_description_and_a_runbook_in_the_readme():
    readme = (ROOT / "README.md").read_text().lower()
    for rule in alert_rules():
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], rule["alert"]
        anchor = notes["runbook"].split("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert f"#### {rule['alert'].lower()}" in readme, f"no runbook for {rule['alert']}"
        metric_names(rule["expr"])  # parses


def test_ack_outcomes_cover_every_protocol_error_code():
    # PROTOCOL.md lives beside the checkout (README: ../shared/PROTOCOL.md), or beside /work/wt
    found = [p for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared/PROTOCOL.md").exists()]
    text = (found[0] / "shared/PROTOCOL.md").read_text() if found else ""
    documented = set(re.findall(r"`([a-z_]+)` \"", text))
    from services.common.errors import Code

    documented |= {c.value for c in Code}
    assert {
        "invalid_message",
        "rate_limited",
        "forbidden",
        "not_found",
        "unavailable",
    } <= documented
    assert documented <= set(metrics.outcomes())
