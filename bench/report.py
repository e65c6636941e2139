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
        f"Command: `{meta['command']}`{commit_note(meta)}. Machine: {meta['machine']}. "
        f"Load average (1 min) at start {meta['load_start']}, at end {meta.get('load_end', '?')} "
        "— other processes share the machine, so only ratios measured in the same run mean "
        "anything; absolute numbers move with the load.",
        "",
    ]
    gateway_path = directory / "gateway.json"
    if gateway_path.exists():
        g = json.loads(gateway_path.read_text())
    if gateway_path.exists() and {"single", "cluster", "cluster2"} & set(g):
        out += [
            "### Gateway vs the reference server (shared kit, same run, alternating A B A B)",
            "",
            f"`fanout.js`: {g['receivers']} receivers, {g['senders']} closed-loop senders, one "
            f"room, websocket, {g['seconds']} s per run, {g['rounds']} runs per server. Rate "
            "limits raised on both; latency = send → each delivery.",
            "",
        ]
        if "single" in g:
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
    if gateway_path.exists() and "memory" in g:
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
    if gateway_path.exists():
        out += cluster_sections(g)
    out += idle_section(directory)
    persistence_path = directory / "persistence.json"
    if persistence_path.exists():
        p = json.loads(persistence_path.read_text())
        b, st, h = p["burst"], p["steady"], p["history"]
        out += [
            "### Persistence (Kafka → worker → Cassandra, one worker process)",
            "",
            "| measure | value |",
            "| --- | ---: |",
            *_backlog_rows(p.get("backlog")),
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
    api_path = directory / "api.json"
    if api_path.exists():
        out += api_section(json.loads(api_path.read_text()))
    return "\n".join(out)


def _backlog_rows(backlog: dict | None) -> list[str]:
    """The worker's own capacity: a backlog queued in Kafka before it starts, drained."""
    if not backlog or "stored_per_s_sustained" not in backlog:
        return []
    return [
        f"| backlog: {backlog.get('messages', 0):,} messages queued before the worker starts, "
        f"stored/s while draining (10 % → 90 %) | "
        f"**{_fmt(backlog['stored_per_s_sustained'])}** |",
        f"| backlog: all stored after (s) / worker CPU % of one core | "
        f"{backlog['all_stored_after_s']} / {backlog['worker_cpu_percent']} |",
    ]


def _yes(value: bool | None) -> str:
    return "–" if value is None else "yes" if value else "**no**"


def commit_note(meta: dict[str, Any]) -> str:
    return f" at commit `{meta['commit']}`" if meta.get("commit") else ""


def cluster_sections(g: dict[str, Any]) -> list[str]:
    """The parts of issue 14: two pods, interest counters, fixed offered load, profile."""
    out: list[str] = []
    if "cluster2" in g:
        out += fanout_table(
            "Two Parley gateways through Redis (cluster mode, one Redis prefix) vs two "
            "reference servers with the Redis adapter; `fanout.js` spreads the clients over "
            "both round-robin; server CPU is the sum of both processes",
            g["cluster2"],
        )
    out += interest_section(g.get("interest"))
    out += fixed_section(g.get("fixed"))
    out += profile_section(g.get("profile"))
    took = g.get("part_seconds") or {}
    order = ("single", "memory", "cluster", "fixed", "profile", "cluster2", "interest")
    if took:
        times = ", ".join(f"{k} {took[k]:g} s" for k in sorted(took, key=(*order, *took).index))
        out += [f"Wall time of the gateway parts: {times}.", ""]
    return out


def interest_section(i: dict[str, Any] | None) -> list[str]:
    if not i:
        return []
    out = [
        f"#### Fan-out proportional to interest: {i['rooms']} rooms over 2 gateways",
        "",
        f"Room r's {i['members_per_room']} members are all on pod (r mod 2); every room has one "
        "sender socket on each pod (a member's user, not joined there, so that pod has no "
        f"interest in the room); each sends {i['messages_per_sender']} messages "
        f"({i['sent']:,} in all, {i['send_errors']} error acks, "
        f"{i['deliveries']:,} of {i['deliveries_expected']:,} deliveries). Counters: "
        "`parley_gateway_fanout_received_total` / `_published_total` from each pod's "
        "`/metrics`, after − before.",
        "",
        "| pod | rooms with members | received, room channels | expected (its rooms only) "
        "| if it took every room | received / other pod's published | published, room "
        "channels | only its rooms' |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for n, p in enumerate(i["pods"], 1):
        d = p["counters_delta"]
        out.append(
            f"| {n} | {p['rooms_with_members']} | {_fmt(d['received_room'])} | "
            f"{_fmt(p['expected_received_room'])} | {_fmt(p['if_subscribed_to_every_room'])} | "
            f"{_ratio(p['received_share_of_other_pods_messages'])} | "
            f"{_fmt(d['published_room'])} | {_yes(p.get('only_its_rooms'))} |"
        )
    return [*out, ""]


def fixed_section(f: dict[str, Any] | None) -> list[str]:
    if not f:
        return []
    s = f["summary"]
    rows = [
        ("ack latency p50 (ms, emit → ack)", "ack_p50_ms"),
        ("ack latency p99 (ms)", "ack_p99_ms"),
        ("send → delivery p50 (ms)", "delivery_p50_ms"),
        ("send → delivery p99 (ms)", "delivery_p99_ms"),
        ("sends/s actually emitted", "sent_per_s"),
        ("generator lateness p99 (ms behind schedule)", "schedule_late_p99_ms"),
        ("server CPU, % of one core", "server_cpu_percent"),
    ]
    out = [
        f"#### Fixed offered load: {_fmt(f['offered_per_s'])} msg/s (half the reference's "
        "saturated acked sends/s in the cluster pair), one cluster gateway vs reference + "
        "Redis adapter",
        "",
        f"`bench/fixed_rate.js`: open loop, {f['senders']} senders round-robin, "
        f"{f['receivers']} receivers in one room, {f['seconds']} s per run, {f['rounds']} runs "
        "per server (A B A B), 3 s grace for late acks.",
        "",
        "| median of the runs | Parley | reference | Parley / reference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, key in rows:
        m = s[key]
        out.append(
            f"| {label} | {_fmt(m['parley'], 1)} | {_fmt(m['reference'], 1)} | "
            f"{_ratio(m['ratio'])} |"
        )
    for label, key in (
        ("sent (all runs)", "sent"),
        ("acked", "acked"),
        ("error acks", "errors"),
        ("missing acks (none within the grace)", "missing_acks"),
        ("deliveries / expected (acked × receivers)", "deliveries"),
    ):
        p, r = s[key]["parley"], s[key]["reference"]
        if key == "deliveries":
            e = s["deliveries_expected"]
            out.append(
                f"| {label} | {_fmt(p)} / {_fmt(e['parley'])} | {_fmt(r)} / "
                f"{_fmt(e['reference'])} | |"
            )
        else:
            out.append(f"| {label} | {_fmt(p)} | {_fmt(r)} | |")
    t = s["target_met"]
    verdict = ", ".join(
        f"{name} {'met' if ok else '**not met**'}"
        for name, ok in (
            ("ack p99 ≤ 50 ms", t["ack_p99_le_50ms"]),
            ("send → delivery p99 ≤ 100 ms", t["delivery_p99_le_100ms"]),
        )
    )
    return [*out, "", f"Issue 14 targets for Parley (medians of the runs): {verdict}.", ""]


def profile_section(p: dict[str, Any] | None) -> list[str]:
    if not p:
        return []
    title = "#### Profile of the cluster gateway at saturation (py-spy, one extra fan-out run)"
    if "error" in p:
        return [title, "", f"Not recorded: {p['error']}.", ""]
    fan = p.get("fanout") or {}
    out = [
        title,
        "",
        f"{p['seconds']} s at {p['rate_hz']} Hz, {p['main_thread_samples']} samples of the event "
        f"loop's thread ({p['samples']} over all threads) while `fanout.js` ran "
        f"({_fmt(fan.get('deliveries_per_s'))} deliveries/s, not counted above). Flame graph "
        f"`{p['svg']}`, tables `{p['table']}`, collapsed stacks `{p['collapsed']}`.",
        "",
        "| # | self % (event loop thread) | function |",
        "| ---: | ---: | --- |",
    ]
    for n, row in enumerate(p["top_self"][:15], 1):
        out.append(f"| {n} | {row['percent']} | `{row['function']}` |")
    return [*out, ""]


def idle_section(directory: Path) -> list[str]:
    path = directory / "idle_conns.json"
    if not path.exists():
        return []
    i = json.loads(path.read_text())
    return [
        f"### Idle connections: {i['connected']:,} websocket connections on one gateway "
        f"for {i['held_seconds']:g} s",
        "",
        "Single-node gateway; each client joins `/chat` with a token and then only answers "
        "Engine.IO pings (`bench/idle_conns.py`).",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| connected / failed to connect | {i['connected']:,} / {i['failed']} |",
        f"| dropped by the server while idle | {i['dropped_while_idle']} |",
        f"| pings answered | {i['pongs']:,} |",
        f"| time to open them all (s) | {i['connect_seconds']} |",
        f"| RSS warmed up → with the connections (kB) | {_fmt(i['rss_before_kb'])} → "
        f"{_fmt(i['rss_idle_kb'])} |",
        f"| RSS per connection (kB) | {i['kb_per_connection']} |",
        f"| RSS samples while idle (kB, every 10 s) | "
        f"{', '.join(_fmt(v) for v in i['rss_samples_kb'])} |",
        f"| gateway CPU while idle (% of one core) | {i['server_cpu_percent_idle']} |",
        "",
    ]


def api_section(a: dict[str, Any]) -> list[str]:
    """``bench/api.py``: the Server API publish path beside ``chat:message``, same run."""
    rows = [
        ("accepted messages/s (201 / ack ok)", "accepted_per_s"),
        ("send → 201 / ack p50 (ms)", "answer_p50_ms"),
        ("send → 201 / ack p95 (ms)", "answer_p95_ms"),
        ("send → delivery p50 (ms)", "p50_ms"),
        ("send → delivery p95 (ms)", "p95_ms"),
        ("send → delivery p99 (ms)", "p99_ms"),
        ("publishing gateway CPU ms per message", "publisher_cpu_ms_per_message"),
        ("bench process CPU, % of one core", "client_cpu_percent"),
    ]
    names = {
        "api": "API (parley_client)",
        "api-aiohttp": "API (aiohttp)",
        "socketio": "Socket.IO",
    }
    s, one = a["summary"], a["serial"]
    paths = list(s)
    c = a["concurrency"]
    head = [f"{names.get(p, p)} x{c}" for p in paths] + [f"{names.get(p, p)} x1" for p in paths]
    out = [
        f"### Server API publish vs `chat:message` ({a['mode']})",
        "",
        f"{a['receivers']} receivers over {a['gateways']} gateways in one room; "
        f"{a['messages']:,} messages per path and round, {a['rounds']} rounds alternating the "
        "paths, then each path once with one request in flight. The first gateway takes every "
        "publish; latency = send → each receiver's copy; medians of the runs.",
        "",
        "| | " + " | ".join(head) + " |",
        "| --- |" + " ---: |" * len(head),
    ]
    for label, key in rows:
        cells = [_fmt(s[p].get(key)) for p in paths] + [_fmt(one[p].get(key)) for p in paths]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    delivered = ", ".join(
        f"{names.get(p, p)} {s[p]['deliveries'] + one[p]['deliveries']:,} of "
        f"{s[p]['expected'] + one[p]['expected']:,} ({s[p]['errors'] + one[p]['errors']} "
        "failed sends)"
        for p in paths
    )
    out += ["", f"Deliveries, all runs: {delivered}.", ""]
    return out


def main() -> None:
    directory = Path(sys.argv[1])
    text = render(directory)
    (directory / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
