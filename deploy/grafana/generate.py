"""Parley's Grafana dashboards, built in code with grafana-foundation-sdk (pinned in
deploy/grafana/requirements.txt), written as JSON beside this file and into the Helm chart.

    .venv/bin/python deploy/grafana/generate.py          # write every generated file
    .venv/bin/python deploy/grafana/generate.py --check  # exit 1 if a committed file differs

Generated: ``deploy/grafana/parley-{throughput,errors}.json`` and their copies in
``deploy/helm/parley/dashboards/`` (the chart ships them as ConfigMaps for the Grafana
sidecar), plus ``deploy/helm/parley/rules/parley.rules.yaml``, a copy of
``deploy/prometheus/rules/parley.rules.yml`` (the chart's PrometheusRule).

Every query is filtered by the ``namespace`` and ``pod`` variables; ``$__rate_interval`` is
Grafana's. The Socket.IO namespace is the metric label ``nsp``. The README section
"Dashboards and alerts" says what each panel shows and what healthy looks like.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    VizLegendOptions,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

ROOT = Path(__file__).resolve().parents[2]
GRAFANA_DIR = ROOT / "deploy/grafana"
CHART_DIR = ROOT / "deploy/helm/parley"
RULES = ROOT / "deploy/prometheus/rules/parley.rules.yml"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"


def sel(*matchers: str) -> str:
    """A label selector with the dashboard's namespace/pod filters and ``matchers``."""
    return "{" + ",".join(['namespace=~"$namespace"', 'pod=~"$pod"', *matchers]) + "}"


def rate(metric: str, *matchers: str) -> str:
    return f"rate({metric}{sel(*matchers)}[{RATE}])"


def quantile(q: float, metric: str, by: str = "", *matchers: str) -> str:
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) ({rate(metric + '_bucket', *matchers)}))"


@dataclass
class Panel:
    title: str
    description: str
    targets: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    red: float | None = None  # threshold: red at or above this value
    kind: str = "timeseries"  # or "stat"
    width: int = 8
    extra: dict = field(default_factory=dict)

    def build(self):
        builder = (stat.Panel() if self.kind == "stat" else timeseries.Panel()).title(self.title)
        builder = builder.description(self.description).datasource(DATASOURCE).unit(self.unit)
        steps = [Threshold(value=None, color="green")]
        if self.red is not None:
            steps.append(Threshold(value=self.red, color="red"))
        builder = builder.thresholds(
            dash.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)
        )
        builder = builder.height(8 if self.kind == "timeseries" else 4).span(self.width)
        if self.kind == "timeseries":
            builder = builder.min(0).fill_opacity(10).line_width(1)
            builder = builder.legend(table_legend())
            if self.red is not None:
                builder = builder.thresholds_style(
                    GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE)
                )
        else:
            builder = (
                builder.graph_mode(common.BigValueGraphMode.AREA)
                .color_mode(common.BigValueColorMode.VALUE)
                .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
            )
        for ref, (expr, legend) in zip("ABCDEFGH", self.targets, strict=False):
            builder = builder.with_target(
                prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
            )
        return builder


def table_legend() -> VizLegendOptions:
    """A table legend under the graph with the last and the max value of each series."""
    return (
        VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )


def variables(board: dash.Dashboard) -> dash.Dashboard:
    board = board.with_variable(
        dash.DatasourceVariable("datasource").label("Data source").type("prometheus")
    )
    for name, query, label in (
        ("namespace", "label_values(parley_build_info, namespace)", "Namespace"),
        ("pod", 'label_values(parley_build_info{namespace=~"$namespace"}, pod)', "Pod"),
    ):
        board = board.with_variable(
            dash.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(query)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    return board


def board(uid: str, title: str, description: str, rows: list[tuple[str, list[Panel]]]):
    b = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["parley"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .editable()
    )
    b = variables(b)
    for i, (row_title, panels) in enumerate(rows):
        if i == 0:  # the first row is open; the rest start collapsed
            b = b.with_row(dash.Row(row_title))
            for p in panels:
                b = b.with_panel(p.build())
        else:
            row = dash.Row(row_title)
            for p in panels:
                row = row.with_panel(p.build())
            b = b.with_row(row)
    return b.build()


CHAT = 'nsp="/chat"'
MSG = 'event="chat:message"'
PERSISTENCE = 'job="parley-persistence"'
PRESENCE = 'job="parley-presence"'


def throughput():
    overview = [
        Panel(
            "Connections",
            "Socket.IO sessions open on the selected gateways, every namespace and transport.",
            [(f"sum(parley_gateway_connections{sel()})", "sessions")],
            kind="stat",
            width=6,
        ),
        Panel(
            "Messages accepted/s",
            "chat:message (and chat:file) acked ok: durable in Kafka.",
            [(f"sum({rate('parley_gateway_messages_accepted_total')})", "accepted/s")],
            unit="ops",
            kind="stat",
            width=6,
        ),
        Panel(
            "Deliveries/s (/chat)",
            "Event packets handed to /chat sockets: every recipient of a fan-out counts once.",
            [(f"sum({rate('parley_gateway_deliveries_total', CHAT)})", "deliveries/s")],
            unit="ops",
            kind="stat",
            width=6,
        ),
        Panel(
            "chat:message ack p99",
            "99th percentile of the time from receiving chat:message to its ack (target 500 ms).",
            [(quantile(0.99, "parley_gateway_event_seconds", "", MSG), "p99")],
            unit="s",
            red=0.5,
            kind="stat",
            width=6,
        ),
        Panel(
            "Connections per pod",
            "Sessions open on each gateway; an even spread means the load balancer is sticky "
            "but fair.",
            [(f"sum by (pod) (parley_gateway_connections{sel()})", "{{pod}}")],
        ),
        Panel(
            "Connections by namespace and transport",
            "polling sessions that never upgrade point at a proxy that blocks WebSocket.",
            [
                (
                    f"sum by (nsp, transport) (parley_gateway_connections{sel()})",
                    "{{nsp}} {{transport}}",
                )
            ],
        ),
        Panel(
            "Connects/s and disconnects/s",
            "Accepted handshakes and ended sessions per second, by namespace.",
            [
                (f"sum by (nsp) ({rate('parley_gateway_connects_total')})", "connect {{nsp}}"),
                (
                    f"sum by (nsp) ({rate('parley_gateway_disconnects_total')})",
                    "disconnect {{nsp}}",
                ),
            ],
            unit="ops",
        ),
        Panel(
            "Messages accepted/s",
            "chat:message acked ok per gateway.",
            [(f"sum by (pod) ({rate('parley_gateway_messages_accepted_total')})", "{{pod}}")],
            unit="ops",
        ),
        Panel(
            "Deliveries/s",
            "Event packets handed to sockets, by Socket.IO namespace.",
            [(f"sum by (nsp) ({rate('parley_gateway_deliveries_total')})", "{{nsp}}")],
            unit="ops",
        ),
        Panel(
            "Fan-out ratio",
            "/chat deliveries per accepted message: the average number of sockets a message "
            "reaches (room size), typing and presence events included.",
            [
                (
                    f"sum({rate('parley_gateway_deliveries_total', CHAT)}) / "
                    f"sum({rate('parley_gateway_messages_accepted_total')})",
                    "deliveries per message",
                )
            ],
        ),
        Panel(
            "chat:message ack latency",
            "Receive to ack of chat:message (the Kafka append dominates): p50, p95, p99.",
            [
                (quantile(q, "parley_gateway_event_seconds", "", MSG), f"p{int(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ],
            unit="s",
            red=0.5,
            width=16,
        ),
        Panel(
            "Ack latency p99 by event",
            "99th percentile of receive-to-ack for every client event.",
            [(quantile(0.99, "parley_gateway_event_seconds", "event"), "{{event}}")],
            unit="s",
        ),
    ]
    fanout = [
        Panel(
            "Fan-out through Redis",
            "Room emits each gateway published to the Redis channel and received from it.",
            [
                (f"sum by (pod) ({rate('parley_gateway_fanout_published_total')})", "pub {{pod}}"),
                (f"sum by (pod) ({rate('parley_gateway_fanout_received_total')})", "recv {{pod}}"),
            ],
            unit="ops",
        ),
        Panel(
            "Redis publish latency",
            "Time of one fan-out PUBLISH: p50 and p99.",
            [
                (quantile(q, "parley_gateway_redis_publish_seconds"), f"p{int(q * 100)}")
                for q in (0.5, 0.99)
            ],
            unit="s",
            red=0.05,
        ),
        Panel(
            "Events handled/s",
            "Client events by name, every outcome.",
            [(f"sum by (event) ({rate('parley_gateway_events_total')})", "{{event}}")],
            unit="ops",
        ),
    ]
    kafka = [
        Panel(
            "Kafka appends/s",
            "Records the gateways appended to Kafka (messages and read receipts).",
            [(f"sum by (pod) ({rate('parley_gateway_kafka_append_seconds_count')})", "{{pod}}")],
            unit="ops",
        ),
        Panel(
            "Kafka append latency",
            "acks=all round trip of one append: p50 and p99.",
            [
                (quantile(q, "parley_gateway_kafka_append_seconds"), f"p{int(q * 100)}")
                for q in (0.5, 0.99)
            ],
            unit="s",
            red=0.25,
        ),
        Panel(
            "Kafka appends in flight",
            "Appends waiting for the brokers' ack, per gateway.",
            [(f"sum by (pod) (parley_gateway_kafka_appends_in_flight{sel()})", "{{pod}}")],
        ),
        Panel(
            "Consumer lag",
            "Accepted messages not yet stored, per partition (the worker's view).",
            [
                (
                    f"sum by (partition) (parley_persistence_partition_lag_messages{sel()})",
                    "partition {{partition}}",
                ),
                (
                    f"sum(parley_persistence_consumer_lag_messages{sel(PERSISTENCE)})",
                    "total",
                ),
            ],
            red=1000,
        ),
        Panel(
            "Messages stored/s",
            "Messages the worker wrote to the store (redeliveries included).",
            [(f"sum({rate('parley_persistence_messages_stored_total')})", "stored/s")],
            unit="ops",
        ),
        Panel(
            "Accepted to stored latency",
            "From a message's acceptance (its id time) to stored in Cassandra: p50 and p99.",
            [
                (quantile(q, "parley_persistence_ingest_latency_seconds"), f"p{int(q * 100)}")
                for q in (0.5, 0.99)
            ],
            unit="s",
            red=5,
        ),
        Panel(
            "Cassandra writes/s",
            "Rows written, by table.",
            [
                (
                    f"sum by (table) ({rate('parley_persistence_cassandra_writes_total')})",
                    "{{table}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Cassandra write latency p99",
            "99th percentile of one row write, by table.",
            [(quantile(0.99, "parley_persistence_cassandra_write_seconds", "table"), "{{table}}")],
            unit="s",
            red=0.1,
        ),
        Panel(
            "Consumer rebalances",
            "Rebalances per worker in the window, and partitions assigned to each.",
            [
                (
                    f"sum by (pod) (increase(parley_persistence_rebalances_total{sel()}[{RATE}]))",
                    "rebalances {{pod}}",
                ),
                (
                    f"sum by (pod) (parley_persistence_assigned_partitions{sel(PERSISTENCE)})",
                    "partitions {{pod}}",
                ),
            ],
        ),
    ]
    presence = [
        Panel(
            "Online users",
            "Users announced online (at least one session on a live pod).",
            [
                (f"max(parley_presence_online_users{sel(PRESENCE)})", "users"),
                (f"max(parley_presence_sessions{sel(PRESENCE)})", "sessions"),
            ],
        ),
        Panel(
            "Presence announcements/s",
            "presence:online / presence:offline announcements, by kind.",
            [
                (
                    f"sum by (kind) ({rate('parley_presence_announcements_total')})",
                    "{{kind}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Heartbeat lag",
            "Age of the oldest gateway heartbeat: above the presence TTL a pod is reaped.",
            [(f"max(parley_presence_heartbeat_lag_seconds{sel(PRESENCE)})", "oldest heartbeat")],
            unit="s",
            red=30,
        ),
    ]
    return board(
        "parley-throughput",
        "Parley / Throughput",
        "Connections, messages, deliveries, fan-out, Kafka, Cassandra and presence rates.",
        [
            ("Gateways", overview),
            ("Fan-out (Redis)", fanout),
            ("Kafka and persistence", kafka),
            ("Presence", presence),
        ],
    )


SERVER_FAILURES = 'outcome=~"unavailable|error"'
NOT_OK = 'outcome!="ok"'
GATEWAY = 'job="parley-gateway"'
STATUS_5XX = 'status="5xx"'


def errors():
    acks = [
        Panel(
            "Server-side error ratio",
            "Share of client events acked unavailable or failed unexpectedly (alert > 1%).",
            [
                (
                    f"sum({rate('parley_gateway_events_total', SERVER_FAILURES)}) / "
                    f"sum({rate('parley_gateway_events_total')})",
                    "ratio",
                )
            ],
            unit="percentunit",
            red=0.01,
            kind="stat",
            width=6,
        ),
        Panel(
            "Error acks/s",
            "Events acked with an error code, every code.",
            [(f"sum({rate('parley_gateway_events_total', NOT_OK)})", "errors/s")],
            unit="ops",
            red=1,
            kind="stat",
            width=6,
        ),
        Panel(
            "Handler errors/s",
            "Unexpected exceptions in event handlers: bugs (acked unavailable).",
            [(f"sum({rate('parley_gateway_handler_errors_total')})", "errors/s")],
            unit="ops",
            red=0.001,
            kind="stat",
            width=6,
        ),
        Panel(
            "Gateways not ready",
            "Gateways whose required readiness checks fail (out of the load balancer).",
            [(f"count(parley_ready{sel(GATEWAY)} == 0) or vector(0)", "")],
            red=1,
            kind="stat",
            width=6,
        ),
        Panel(
            "Error acks by code",
            "Acks by PROTOCOL.md error code (and error: unexpected exception).",
            [
                (
                    f"sum by (outcome) ({rate('parley_gateway_events_total', NOT_OK)})",
                    "{{outcome}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Error acks by event",
            "Which events fail (server-side failures only).",
            [
                (
                    f"sum by (event) ({rate('parley_gateway_events_total', SERVER_FAILURES)})",
                    "{{event}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Rate-limited events/s",
            "Events refused by a rate limit, by event.",
            [(f"sum by (event) ({rate('parley_gateway_rate_limited_total')})", "{{event}}")],
            unit="ops",
        ),
    ]
    handshakes = [
        Panel(
            "Handshake refusals by reason",
            "connect_error sent, by code (auth_required, invalid_token, token_expired, ...).",
            [(f"sum by (code) ({rate('parley_gateway_handshakes_refused_total')})", "{{code}}")],
            unit="ops",
        ),
        Panel(
            "Disconnects by reason",
            "Ended sessions by reason; transport_error and ping_timeout point at the network.",
            [
                (
                    f"sum by (reason) ({rate('parley_gateway_disconnects_total')})",
                    "{{reason}}",
                )
            ],
            unit="ops",
        ),
        Panel(
            "Sockets refused for bad input/s",
            "Sockets disconnected for breaking an input limit (input_limit) or sending an "
            "undecodable packet (parse_error).",
            [(f"sum by (reason) ({rate('parley_gateway_input_refused_total')})", "{{reason}}")],
            unit="ops",
        ),
        Panel(
            "Password hashing queue full/s",
            "Registrations and logins refused with 503 because the bcrypt queue was full.",
            [(f"sum by (pod) ({rate('parley_gateway_password_hash_busy_total')})", "{{pod}}")],
            unit="ops",
            red=0.01,
        ),
        Panel(
            "HTTP 5xx/s",
            "5xx responses of the gateways' HTTP routes (probes, auth, files), by route.",
            [
                (
                    f"sum by (route) ({rate('parley_gateway_http_responses_total', STATUS_5XX)})",
                    "{{route}}",
                )
            ],
            unit="ops",
            red=0.01,
        ),
    ]
    backends = [
        Panel(
            "Kafka append errors/s",
            "Failed appends by reason (not_connected, timeout, kafka_error): messages acked "
            "unavailable.",
            [
                (
                    f"sum by (reason) ({rate('parley_gateway_kafka_append_errors_total')})",
                    "{{reason}}",
                )
            ],
            unit="ops",
            red=0.001,
        ),
        Panel(
            "Redis publish errors/s",
            "Fan-out publishes that failed: other pods miss those emits.",
            [(f"sum by (pod) ({rate('parley_gateway_redis_publish_errors_total')})", "{{pod}}")],
            unit="ops",
            red=0.001,
        ),
        Panel(
            "Cassandra write errors/s",
            "Failed row writes by table and kind (timeout, unavailable, other).",
            [
                (
                    f"sum by (table, kind) "
                    f"({rate('parley_persistence_cassandra_write_errors_total')})",
                    "{{table}} {{kind}}",
                )
            ],
            unit="ops",
            red=0.001,
        ),
        Panel(
            "Worker retries and refused commits",
            "Store batches retried after a failure; offset commits refused by a rebalance.",
            [
                (f"sum({rate('parley_persistence_write_retries_total')})", "write retries"),
                (f"sum({rate('parley_persistence_commit_failures_total')})", "commit failures"),
            ],
            unit="ops",
        ),
        Panel(
            "Dead letters and expired messages",
            "Records moved to <topic>.dlq (undecodable) and messages dropped because Kafka "
            "appended them after the gateway had acked unavailable, in the window.",
            [
                (
                    f"sum(increase(parley_persistence_poison_records_total{sel()}[{RATE}]))",
                    "dead letters",
                ),
                (
                    f"sum(increase(parley_persistence_expired_messages_total{sel()}[{RATE}]))",
                    "expired",
                ),
            ],
            red=1,
        ),
        Panel(
            "Other failures",
            "Stats board writes, mention/DM notifications that failed (best effort).",
            [
                (f"sum({rate('parley_gateway_stats_report_errors_total')})", "stats report"),
                (f"sum({rate('parley_gateway_notification_errors_total')})", "notifications"),
            ],
            unit="ops",
        ),
    ]
    processes = [
        Panel(
            "Readiness checks",
            "1 = passing. Gateways: log (Kafka), presence (Redis), fanout, store/users "
            "(Cassandra, optional); worker: kafka, cassandra; presence: redis.",
            [(f"min by (pod, check) (parley_readiness_check{sel()})", "{{pod}} {{check}}")],
            width=12,
        ),
        Panel(
            "Restarts",
            "Process restarts in the window (a new process start time).",
            [
                (
                    f"sum by (pod) (changes(process_start_time_seconds{sel()}[1h]))",
                    "{{pod}}",
                )
            ],
            red=1,
            width=12,
        ),
        Panel(
            "Draining gateways",
            "1 from SIGTERM until exit: readiness 503 while clients move away.",
            [(f"max by (pod) (parley_gateway_draining{sel()})", "{{pod}}")],
        ),
        Panel(
            "Presence leader",
            "Replicas holding the reaper lease: exactly 1 is healthy.",
            [(f"sum(parley_presence_leader{sel(PRESENCE)})", "leaders")],
        ),
        Panel(
            "Offline detection delay",
            "From a crashed pod's last heartbeat to its users' offline announcement (p99).",
            [(quantile(0.99, "parley_presence_offline_detection_seconds"), "p99")],
            unit="s",
        ),
    ]
    return board(
        "parley-errors",
        "Parley / Errors",
        "Error acks, handshake refusals, backend errors and timeouts, dead letters, 5xx, "
        "restarts and readiness.",
        [
            ("Acks", acks),
            ("Handshakes, sessions and HTTP", handshakes),
            ("Backends (Kafka, Redis, Cassandra)", backends),
            ("Processes", processes),
        ],
    )


def rendered() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for name, built in (("parley-throughput", throughput()), ("parley-errors", errors())):
        text = json.dumps(built, cls=JSONEncoder, sort_keys=True, indent=2) + "\n"
        files[GRAFANA_DIR / f"{name}.json"] = text
        files[CHART_DIR / "dashboards" / f"{name}.json"] = text
    header = (
        "# Generated by deploy/grafana/generate.py from deploy/prometheus/rules/parley.rules.yml\n"
    )
    files[CHART_DIR / "rules" / "parley.rules.yaml"] = header + RULES.read_text()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    stale = []
    for path, text in rendered().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("stale generated files (run deploy/grafana/generate.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
