"""Run-level wiring: the missing-delivery sweeper, delivery counts across workers, the verdict.

- Every process with users (a worker, or a local run) sweeps its delivery books once a second
  and records each missing delivery as a ``deliver`` / ``chat:message [missing]`` failure;
  at the end of the run every pending message is decided.
- Workers add their delivery counts (deltas) to each stats report; the master sums them, so a
  distributed run reports one delivery ratio. When the run ends the master asks every worker
  to stop and send its final report, and waits for them (up to 20 s) before it quits.
- The master (or the local runner) writes ``<csv prefix>_parley.json`` (counts, ratio,
  verdict) and sets the exit code: 1 when the failure ratio or the delivery ratio is out of
  bounds, 3 when a latency threshold is exceeded, else 0.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import Counter

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsError
from lt_delivery import delivery_ratio
from lt_user import CONFIG, TRACKER, AckError, worker_index
from lt_verdict import verdict

log = logging.getLogger("parley.loadtest")
TOTALS: Counter[str] = Counter()  # what this process reports: its own, or the workers' sum
OWN: Counter[str] = Counter()  # what this process measured itself (requests by name)
_sweeper: list[gevent.Greenlet] = []
_reporters: set[str] = set()  # master: the workers that sent stats


def _record_missing(environment, missing: list[tuple[str, int]]) -> None:
    for _room, count in missing:
        for _ in range(count):
            environment.events.request.fire(
                request_type="deliver",
                name="chat:message [missing]",
                response_time=0,
                response_length=0,
                exception=AckError("missing"),
                context={},
            )


def _sweep_forever(environment) -> None:
    while True:
        gevent.sleep(1.0)
        found = TRACKER.sweep(time.time() * 1000, CONFIG.delivery_timeout_s * 1000)
        _record_missing(environment, found)


_load_at_start: list[float] = []
_cpu_reported = [time.process_time()]


@events.test_start.add_listener
def _start(environment, **_kw) -> None:
    _load_at_start[:] = [os.getloadavg()[0]]
    _cpu_reported[0] = time.process_time()  # count the run, not the imports before it
    if not isinstance(environment.runner, MasterRunner) and not _sweeper:
        _sweeper.append(gevent.spawn(_sweep_forever, environment))


_finished_workers: set[str] = set()


@events.init.add_listener
def _init(environment, **_kw) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message("parley_final_done", _final_done)
    elif isinstance(runner, WorkerRunner):
        runner.register_message("parley_final", _final_on_worker)


def _final_on_worker(environment, msg, **_kw) -> None:
    """The master is about to quit: stop the users, close the books and send everything now
    (locust gives a worker's last report after ``quit`` only half a second)."""
    runner = environment.runner
    runner.stop()  # fires test_stop: pending messages decided, missing ones recorded
    runner._send_stats()  # stats + delivery counts, ahead of the reply below
    runner.send_message("parley_final_done")


def _final_done(environment, msg, **_kw) -> None:
    _finished_workers.add(msg.node_id)


def _collect_finals(runner: MasterRunner, timeout_s: float = 20.0) -> None:
    workers = {c.id for c in runner.clients.all}
    for worker in workers:
        runner.send_message("parley_final", None, client_id=worker)
    deadline = time.monotonic() + timeout_s
    while not workers <= _finished_workers and time.monotonic() < deadline:
        gevent.sleep(0.1)
    if not workers <= _finished_workers:
        log.warning("no final report from %d worker(s)", len(workers - _finished_workers))


@events.test_stop.add_listener
def _stop(environment, **_kw) -> None:
    if isinstance(environment.runner, MasterRunner):
        _collect_finals(environment.runner)
        return
    for g in _sweeper:
        g.kill(block=False)
    _sweeper.clear()
    _record_missing(environment, TRACKER.finish_all())


@events.request.add_listener
def _own(request_type, name, exception=None, **_kw) -> None:
    OWN[f"{request_type} {name}{' (failed)' if exception else ''}"] += 1


def _cpu_ms() -> int:
    """CPU this process spent since it last reported (user + system, all greenlets)."""
    now = time.process_time()
    spent, _cpu_reported[0] = now - _cpu_reported[0], now
    return int(spent * 1000)


@events.report_to_master.add_listener
def _report(client_id, data, **_kw) -> None:
    delta = TRACKER.take()
    if _load_at_start:  # the run has started on this worker
        delta["generator_cpu_ms"] = _cpu_ms()
    TOTALS.update(delta)
    data["parley"] = delta


@events.worker_report.add_listener
def _worker_report(client_id, data, **_kw) -> None:
    _reporters.add(client_id)
    TOTALS.update(data.get("parley") or {})


@events.quitting.add_listener
def _quitting(environment, **_kw) -> None:
    runner = environment.runner
    options = environment.parsed_options
    prefix = getattr(options, "csv_prefix", None) if options else None
    if isinstance(runner, WorkerRunner):
        if CONFIG.worker_stats_dir:
            _write(
                os.path.join(CONFIG.worker_stats_dir, f"worker-{worker_index(environment)}.json"),
                {"requests": dict(OWN), "parley": dict(TOTALS)},
            )
        return
    if not isinstance(runner, MasterRunner):
        TOTALS.update(TRACKER.take())
        TOTALS["generator_cpu_ms"] += _cpu_ms()
    counts = dict(TOTALS)
    code, problems = verdict(CONFIG, counts, environment.stats)
    for p in problems:
        log.error("threshold: %s", p)
    environment.process_exit_code = code
    if prefix:
        _write(
            f"{prefix}_parley.json",
            {
                "counts": counts,
                "delivery_ratio": delivery_ratio(counts),
                "exit_code": code,
                "problems": problems,
                "thresholds": CONFIG.thresholds,
                "max_fail_ratio": CONFIG.max_fail_ratio,
                "min_delivery_ratio": CONFIG.min_delivery_ratio,
                "host": environment.host,
                "users": getattr(options, "num_users", None),
                "spawn_rate": getattr(options, "spawn_rate", None),
                "run_time": getattr(options, "run_time", None),
                "workers": len(_reporters),
                "user_classes": sorted(runner.user_classes_count or {})
                if hasattr(runner, "user_classes_count")
                else [],
                "stats": _final_stats(environment.stats),
                "machine": _machine(),
                "load_average_1m": {
                    "start": round(_load_at_start[0], 2) if _load_at_start else None,
                    "end": round(os.getloadavg()[0], 2),
                },
            },
        )


def _entry(e) -> dict[str, object]:
    pct = e.get_response_time_percentile
    return {
        "type": e.method or "",
        "name": e.name,
        "requests": e.num_requests,
        "failures": e.num_failures,
        "p50": pct(0.5) if e.num_requests else None,
        "p95": pct(0.95) if e.num_requests else None,
        "p99": pct(0.99) if e.num_requests else None,
        "max": e.max_response_time if e.num_requests else None,
        "per_s": round(e.total_rps, 3),
    }


def _final_stats(stats) -> dict[str, object]:
    """The final numbers, the ones the verdict used (the CSVs are written once a second, so
    their last rows can miss the last requests of users stopping)."""
    return {
        "entries": [_entry(e) for e in sorted(stats.entries.values(), key=lambda e: e.name)],
        "total": _entry(stats.total),
        "errors": [
            {
                "type": err.method,
                "name": err.name,
                "error": StatsError.parse_error(err.error),
                "count": err.occurrences,
            }
            for err in stats.errors.values()
        ],
    }


def _machine() -> dict[str, object]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _write(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
