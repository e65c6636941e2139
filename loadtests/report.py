"""Turn one run's locust CSVs into ``summary.md`` with plots (matplotlib PNGs).

    python loadtests/report.py loadtests/reports/<run>

Reads ``locust_parley.json`` (counts, verdict and the final stats; ``locust_stats.csv`` and
``locust_failures.csv`` when it has none) and ``locust_stats_history.csv``
(``--csv-full-history``: one row per name and second, percentiles over locust's rolling
window); writes ``users.png``, ``messages.png``, ``deliveries.png``, ``latency.png`` and
``summary.md`` beside them.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PCTS = ("50%", "95%", "99%")


def num(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def history(rows: list[dict[str, str]]) -> tuple[dict, list[tuple[float, float]]]:
    """``{(type, name): [(t, row), ...]}`` and the user count over time (t: seconds in)."""
    if not rows:
        return {}, []
    t0 = min(float(r["Timestamp"]) for r in rows)
    series: dict[tuple[str, str], list[tuple[float, dict]]] = defaultdict(list)
    users = []
    for r in rows:
        t = float(r["Timestamp"]) - t0
        if r["Name"] == "Aggregated":
            users.append((t, float(r["User Count"])))
        else:
            series[(r["Type"], r["Name"])].append((t, r))
    return series, users


def plot(path: Path, title: str, ylabel: str, lines: list[tuple[str, list[tuple[float, float]]]]):
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    drawn = False
    for label, points in lines:
        points = [(t, v) for t, v in points if v is not None]
        if points:
            ax.plot([t for t, _ in points], [v for _, v in points], label=label)
            drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def col(points: list[tuple[float, dict]], key: str) -> list[tuple[float, float | None]]:
    return [(t, num(r[key])) for t, r in points]


def fmt(value: str | float | None, digits: int = 0) -> str:
    v = num(value) if isinstance(value, str) else value
    return "–" if v is None else f"{v:,.{digits}f}"


def write_plots(out: Path, series: dict, users: list) -> list[str]:
    plot(out / "users.png", "Users", "users", [("users", users)])
    msgs = series.get(("ack", "chat:message"), [])
    plot(
        out / "messages.png",
        "Messages accepted per second (chat:message acked ok)",
        "messages/s",
        [("chat:message", col(msgs, "Requests/s"))],
    )
    dels = series.get(("deliver", "chat:message"), [])
    plot(
        out / "deliveries.png",
        "Deliveries per second (every recipient)",
        "deliveries/s",
        [("deliveries", col(dels, "Requests/s"))],
    )
    plot(
        out / "latency.png",
        "Send → delivery latency, rolling percentiles",
        "ms",
        [(f"deliver p{p[:-1]}", col(dels, p)) for p in PCTS]
        + [("ack chat:message p95", col(msgs, "95%"))],
    )
    return ["users.png", "messages.png", "deliveries.png", "latency.png"]


def final_rows(meta: dict) -> tuple[list[dict[str, str]], list[dict[str, str]]] | None:
    """The final stats the run's verdict used (``locust_parley.json``), shaped as CSV rows."""
    final = meta.get("stats")
    if not final:
        return None

    def row(e: dict) -> dict[str, str]:
        return {
            "Type": e["type"],
            "Name": e["name"],
            "Request Count": str(e["requests"]),
            "Failure Count": str(e["failures"]),
            "50%": str(e["p50"]),
            "95%": str(e["p95"]),
            "99%": str(e["p99"]),
            "Max Response Time": str(e["max"]),
            "Requests/s": str(e["per_s"]),
        }

    stats = [row(e) for e in final["entries"]] + [{**row(final["total"]), "Name": "Aggregated"}]
    failures = [
        {"Method": f["type"], "Name": f["name"], "Error": f["error"], "Occurrences": f["count"]}
        for f in final["errors"]
    ]
    return stats, failures


def summary(out: Path) -> str:
    meta = (
        json.loads((out / "locust_parley.json").read_text())
        if (out / "locust_parley.json").exists()
        else {}
    )
    stats, failures = final_rows(meta) or (
        read_csv(out / "locust_stats.csv"),
        read_csv(out / "locust_failures.csv"),
    )
    series, users = history(read_csv(out / "locust_stats_history.csv"))
    counts = meta.get("counts", {})
    images = write_plots(out, series, users)
    by = {(r["Type"], r["Name"]): r for r in stats}
    dl = by.get(("deliver", "chat:message"), {})
    ack = by.get(("ack", "chat:message"), {})
    total = by.get(("", "Aggregated"), {})
    machine = meta.get("machine", {})
    load = meta.get("load_average_1m", {})
    cpu, delivered = counts.get("generator_cpu_ms", 0), counts.get("delivered", 0)
    ratio = meta.get("delivery_ratio")
    verdict = "pass" if meta.get("exit_code") == 0 else f"FAIL (exit code {meta.get('exit_code')})"
    lines = [
        f"# Load test {out.name}",
        "",
        f"- **Verdict: {verdict}**" + "".join(f"\n  - {p}" for p in meta.get("problems", [])),
        f"- Target: `{meta.get('host')}`; user classes: {', '.join(meta.get('user_classes', []))}",
        f"- Users: {meta.get('users')}, spawn rate {meta.get('spawn_rate')}/s, "
        f"run time {meta.get('run_time')} s, locust workers: {meta.get('workers') or 'local'}",
        f"- Machine: {machine.get('cpus')} CPUs ({machine.get('cpu_model')}), "
        f"{machine.get('memory_gib')} GiB, Python {machine.get('python')}; load average "
        f"(1 min) {load.get('start')} at the start, {load.get('end')} at the end",
        "",
        "## Key figures",
        "",
        "| what | value |",
        "| --- | --- |",
        f"| messages accepted (acked ok) | {counts.get('messages_acked', 0):,} "
        f"({fmt(ack.get('Requests/s'), 1)}/s) |",
        f"| messages refused (error ack) | {counts.get('messages_refused', 0):,} |",
        f"| deliveries | {counts.get('delivered', 0):,} ({fmt(dl.get('Requests/s'), 1)}/s) |",
        f"| delivery ratio | {'–' if ratio is None else f'{ratio:.6f}'} "
        f"(missing {counts.get('missing', 0)}, duplicates {counts.get('duplicates', 0)}, "
        f"excused by a leave {counts.get('excused', 0)}) |",
        f"| send → delivery p50 / p95 / p99 / max | {fmt(dl.get('50%'))} / {fmt(dl.get('95%'))} / "
        f"{fmt(dl.get('99%'))} / {fmt(dl.get('Max Response Time'))} ms |",
        f"| chat:message ack p50 / p95 / p99 | {fmt(ack.get('50%'))} / {fmt(ack.get('95%'))} / "
        f"{fmt(ack.get('99%'))} ms |",
        f"| resyncs (messages, gaps, truncated) | {counts.get('resyncs', 0)} "
        f"({counts.get('resync_messages', 0)}, {counts.get('resync_missing', 0)}, "
        f"{counts.get('resync_truncated', 0)}) |",
        f"| load generator CPU (locust users' processes) | {cpu / 1000:,.1f} s"
        + (f", {cpu / delivered * 1000:,.0f} ms per 1,000 deliveries |" if delivered else " |"),
        f"| requests / failures (all types) | {fmt(total.get('Request Count'))} / "
        f"{fmt(total.get('Failure Count'))} |",
        "",
        "## Over time",
        "",
        *[f"![{i[:-4]}]({i})" for i in images],
        "",
        "## Every measurement",
        "",
        "`connect`: handshake; `ack`: emit → ack; `deliver`: send → receipt per recipient; "
        "`history`: join → room:history; `http`: register/login; `api`: Server API request"
        " → answer (parley_client). Times in ms.",
        "",
        "| type | name | count | failures | p50 | p95 | p99 | max | per s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in stats:
        if r["Name"] == "Aggregated":
            continue
        lines.append(
            f"| {r['Type']} | {r['Name']} | {fmt(r['Request Count'])} | {fmt(r['Failure Count'])} "
            f"| {fmt(r['50%'])} | {fmt(r['95%'])} | {fmt(r['99%'])} "
            f"| {fmt(r['Max Response Time'])} | {fmt(r['Requests/s'], 2)} |"
        )
    lines += ["", "## Failures", ""]
    if failures:
        lines += ["| type | name | error | count |", "| --- | --- | --- | ---: |"]
        lines += [
            f"| {f['Method']} | {f['Name']} | {f['Error'][:120]} | {f['Occurrences']} |"
            for f in failures
        ]
    else:
        lines.append("None.")
    received = {k[5:]: v for k, v in counts.items() if k.startswith("recv:")}
    if received:
        lines += ["", "## Other events received", "", "| event | count |", "| --- | ---: |"]
        lines += [f"| {k} | {v:,} |" for k, v in sorted(received.items())]
    lines += [
        "",
        "Files: `locust_stats.csv`, `locust_stats_history.csv` (per second, every name), "
        "`locust_failures.csv`, `report.html` (locust's own), `locust_parley.json`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    text = summary(out)
    (out / "summary.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
