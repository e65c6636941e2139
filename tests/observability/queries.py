"""The queries of the committed dashboards and alert rules, made runnable outside Grafana.

``panel_queries`` walks both dashboards (collapsed rows included); ``concrete`` substitutes
Grafana's variables (``$__rate_interval`` and the dashboard's ``$namespace``/``$pod``) so the
text is plain PromQL; ``metric_names`` lists the metrics a query selects, from the parsed AST.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import promql_parser
import yaml

from tests.support.procs import ROOT

DASHBOARDS = sorted((ROOT / "deploy/grafana").glob("*.json"))
RULES = ROOT / "deploy/prometheus/rules/parley.rules.yml"


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} [{self.ref}]"


def _panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def panel_queries(paths: list[Path] = DASHBOARDS) -> list[PanelQuery]:
    found = []
    for path in paths:
        board = json.loads(path.read_text())
        for panel in _panels(board["panels"]):
            for target in panel.get("targets") or []:
                found.append(
                    PanelQuery(board["title"], panel["title"], target["refId"], target["expr"])
                )
    return found


def concrete(expr: str, rate_interval: str = "30s", namespace: str = ".*", pod: str = ".*") -> str:
    """Grafana's variables replaced: ``$__rate_interval`` (and ``$__interval``, ``$__range``)
    by ``rate_interval``; ``$namespace`` / ``$pod`` by regexes (the "All" value is ``.*``)."""
    out = re.sub(r"\$__(rate_interval|interval|range)\b", rate_interval, expr)
    return out.replace("$namespace", namespace).replace("$pod", pod)


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """Every metric name a (concrete) PromQL expression selects; raises if it does not parse."""
    names: set[str] = set()

    def walk(node) -> None:
        if type(node).__name__ == "VectorSelector":
            names.add(node.name)
        for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, str | int | float):
                walk(child)
        for child in getattr(node, "args", None) or []:
            walk(child)

    walk(promql_parser.parse(expr))
    return names


def scraped_names(text: str) -> set[str]:
    """Sample names of a Prometheus text exposition (``_bucket``, ``_count``, ... included)."""
    return {
        re.split(r"[{\s]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
