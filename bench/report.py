"""The markdown summary of one ``make bench`` run, from the JSON files the benchmarks wrote.

``python -m bench.report DIR`` writes ``DIR/summary.md`` and prints it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    if isinstance(value, int | float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}"
    return str(value)


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"**{value:.2f}×**"


def fanout_table(title: str, block: dict[str, Any]) -> list[str]:
    s = block["summary"]
    rows = [
        ("acked sends/s", "acked_per_s"),
        ("deliveries/s", "deliveries_per_s"),
        ("latency p50 (ms)", "p50_ms"),
        ("latency p99 (ms)", "p99_ms"),
        ("server CPU, % of one core", "server_cpu_percent"),
        ("server CPU ms per 1k deliveries", "server_cpu_ms_per_1k_deliveries"),
    ]
    out = [
        f"#### {title}",
        "",
        "| median of the runs | Parley | reference | Parley / reference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, key in rows:
        m = s[key]
        out.append(
            f"| {label} | {_fmt(m['parley'])} | {_fmt(m['reference'])} | {_ratio(m['ratio'])} |"
        )
    errors = s["errors"]
    runs = ", ".join(
        f"{r['server'][0].upper()}{r['round']}: {_fmt(r['deliveries_per_s'])}/s "
        f"p99 {r['p99_ms']} ms"
        for r in block["runs"]
    )
    out += [
        "",
        f"Runs in order (P = Parley, R = reference): {runs}. "
        f"Error acks: Parley {errors['parley']}, reference {errors['reference']}.",
        "",
    ]
    return out


def render(directory: Path) -> str:
    meta = json.loads((directory / "meta.json").read_text())
    out = [
        f"## Parley benchmarks — {meta['date']}",
        "",
        f"Command: `{meta['command']}`. Machine: {meta['machine']}. "
        f"Load average (1 min) at start {meta['load_start']}, at end {meta.get('load_end', '?')} "
        "— other processes share the machine, so only ratios measured in the same run mean "
        "anything; absolute numbers move with the load.",
        "",
    ]
    gateway_path = directory / "gateway.json"
    if gateway_path.exists():
        g = json.loads(gateway_path.read_text())
        out += [
            "### Gateway vs the reference server (shared kit, same run, alternating A B A B)",
            "",
            f"`fanout.js`: {g['receivers']} receivers, {g['senders']} closed-loop senders, one "
            f"room, websocket, {g['seconds']} s per run, {g['rounds']} runs per server. Rate "
            "limits raised on both; latency = send → each delivery.",
            "",
        ]
        out += fanout_table(
            "Single node: Parley `PARLEY_MODE=single` (SQLite as log and store) vs "
            "reference (memory)",
            g["single"],
        )
        if "cluster" in g:
            out += fanout_table(
                "Cluster mode: one Parley gateway (Redis fan-out, Kafka acks=all before the ack; "
                "worker not running) vs reference with the Redis adapter",
                g["cluster"],
            )
        m = g["memory"]
        out += [
            f"#### Memory per idle connection ({m['parley']['connections']} websocket "
            "connections, fresh single-node servers)",
            "",
            "| | Parley | reference | Parley / reference |",
            "| --- | ---: | ---: | ---: |",
            f"| RSS before (kB) | {_fmt(m['parley']['rss_before_kb'])} | "
            f"{_fmt(m['reference']['rss_before_kb'])} | |",
            f"| RSS with the connections (kB) | {_fmt(m['parley']['rss_with_connections_kb'])} | "
            f"{_fmt(m['reference']['rss_with_connections_kb'])} | |",
            f"| per connection (kB) | {m['parley']['kb_per_connection']:.1f} | "
            f"{m['reference']['kb_per_connection']:.1f} | {_ratio(m['ratio'])} |",
            f"| time to open them all (s) | {m['parley']['connect_seconds']} | "
            f"{m['reference']['connect_seconds']} | |",
            "",
        ]
    persistence_path = directory / "persistence.json"
    if persistence_path.exists():
        p = json.loads(persistence_path.read_text())
        b, st, h = p["burst"], p["steady"], p["history"]
        out += [
            "### Persistence (Kafka → worker → Cassandra, one worker process)",
            "",
            "| measure | value |",
            "| --- | ---: |",
            f"| burst: {b['messages']:,} messages appended through `KafkaMessageLog` "
            f"({b['appends_in_flight']} in flight), Kafka-acked appends/s | "
            f"{_fmt(b['kafka_acked_appends_per_s'])} |",
            f"| burst: messages stored/s by the worker, sustained (10 % → 90 %) | "
            f"{_fmt(b['stored_per_s_sustained'])} |",
            f"| burst: all stored after (s) / worker CPU % of one core | "
            f"{b['all_stored_after_s']} / {b['worker_cpu_percent']} |",
            f"| burst: worker batches / mean size / mean write time (ms) | "
            f"{b['worker_batches']} / {_fmt(b['worker_mean_batch_size'])} / "
            f"{_fmt(b['worker_mean_batch_write_ms'])} |",
            f"| burst: id time → stored p50 / p99 (ms, worker histogram: queueing included) | "
            f"{_fmt(b['ingest_to_stored_p50_ms_histogram'])} / "
            f"{_fmt(b['ingest_to_stored_p99_ms_histogram'])} |",
            f"| steady {st['rate_per_s']}/s for {st['seconds']:g} s: ack → readable through "
            f"`CassandraMessageStore.after` p50 / p99 (ms) | "
            f"{_fmt(st['ack_to_queryable_p50_ms'])} / {_fmt(st['ack_to_queryable_p99_ms'])} |",
            f"| steady: poll cycle (resolution, ms) / ids never seen | "
            f"{_fmt(st['poll_cycle_median_ms'])} / {st['never_seen']} |",
            f"| steady: id time → stored p50 / p99 (ms, worker histogram) | "
            f"{_fmt(st['ingest_to_stored_p50_ms_histogram'])} / "
            f"{_fmt(st['ingest_to_stored_p99_ms_histogram'])} |",
            f"| steady: worker batches / mean size / mean write time (ms) | "
            f"{st['worker_batches']} / {_fmt(st['worker_mean_batch_size'])} / "
            f"{_fmt(st['worker_mean_batch_write_ms'])} |",
            f"| history, room of {h['room_messages']:,}: newest 50 "
            f"(`recent`) p50 / p99 (ms) | {h['newest_50']['p50_ms']} / "
            f"{h['newest_50']['p99_ms']} |",
            f"| history: a page of 50 before a middle id (`before`) p50 / p99 (ms) | "
            f"{h['page_before_middle_50']['p50_ms']} / {h['page_before_middle_50']['p99_ms']} |",
            "",
        ]
    return "\n".join(out)


def main() -> None:
    directory = Path(sys.argv[1])
    text = render(directory)
    (directory / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
