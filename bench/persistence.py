"""The persistence pipeline on the real engines: Kafka → worker → Cassandra, and history reads.

1. burst: M messages appended through the real ``KafkaMessageLog`` as fast as it acks them
   (many appends in flight) while one worker process runs; the worker's stored counter is
   sampled to get its sustained store rate (10 % → 90 % of the burst) and the time until
   everything is stored; its ingest histogram gives id-time → stored latency under that load.
2. steady: a rate well under the store rate for a few seconds; a poller reads every room
   through ``CassandraMessageStore.after`` (from the newest id below which it has seen
   everything) in a loop and notes when each acked id first shows up: ack → queryable latency
   (resolution: one poll cycle, reported).
3. history: a room of H messages; ``recent(room, 50)`` (the newest page) and ``before(room,
   id, 50)`` (a page from the middle), one at a time.

With ``--backlog N``, N messages are appended before the worker starts, and the worker's
store rate is first measured draining that backlog: its own capacity, not bounded by how fast
this process can produce (which the burst is, on a small machine).

Everything runs in a keyspace, topic and group private to the run, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx

from services.common.ids import IdGenerator, lowest_id_at
from services.common.model import Message
from services.storage.messages_cassandra import CassandraMessageStore
from services.storage.messages_kafka import KafkaMessageLog

from . import engines
from .common import Proc, log, median, parley, percentile, write_json

STORED = "parley_persistence_messages_stored_total"
INGEST = "parley_persistence_ingest_latency_seconds_bucket"
BATCHES = "parley_persistence_batch_write_seconds_count"
BATCH_SECONDS = "parley_persistence_batch_write_seconds_sum"
_SAMPLE = re.compile(r'^(\w+)(?:\{le="([^"]+)"\})? ([0-9.eE+-]+|\+Inf|NaN)$')


async def scrape(http: httpx.AsyncClient, url: str) -> tuple[float, dict[Any, float]]:
    """The worker's stored counter, and its cumulative ingest-latency buckets (keyed by bound)
    plus the batch count and total batch write time (keyed by name)."""
    text = (await http.get(url + "/metrics", timeout=5)).text
    stored, buckets = 0.0, {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, le, value = m.groups()
        if name == STORED:
            stored = float(value)
        elif name == INGEST and le is not None:
            buckets[float(le)] = float(value)
        elif name in (BATCHES, BATCH_SECONDS):
            buckets[name] = float(value)
    return stored, buckets


def batches(before: dict[Any, float], after: dict[Any, float], stored: float) -> dict[str, Any]:
    """How the worker wrote: batches, their mean size and mean write time."""
    count = after.get(BATCHES, 0) - before.get(BATCHES, 0)
    seconds = after.get(BATCH_SECONDS, 0) - before.get(BATCH_SECONDS, 0)
    return {
        "worker_batches": int(count),
        "worker_mean_batch_size": round(stored / count, 1) if count else None,
        "worker_mean_batch_write_ms": round(1000 * seconds / count, 1) if count else None,
    }


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]):
    """Prometheus-style quantile of the observations between two scrapes (linear in a bucket)."""
    bounds = sorted(b for b in after if isinstance(b, float))
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1)
        lower, below = bound, cumulative
    return lower


def message(ids: IdGenerator, room: str, i: int) -> Message:
    message_id, ms = ids.new_id()
    return Message(
        id=message_id,
        room_id=room,
        user_id=f"user{i % 97}",
        username=f"User {i % 97}",
        text=f"benchmark message {i} " + "x" * 80,
        created_ms=ms,
        deadline_ms=ms + 120_000,  # never refused by the worker's deadline check here
    )


async def burst(settings, worker: Proc, url: str, count: int, rooms: int, inflight: int) -> dict:
    """M appends as fast as Kafka acks them; the worker's counter sampled every 100 ms."""
    kafka = KafkaMessageLog(settings)
    await kafka.start()
    ids = IdGenerator()
    gate = asyncio.Semaphore(inflight)
    acked_at: list[float] = []

    async def append(i: int) -> None:
        async with gate:
            await kafka.append(message(ids, f"burst-{i % rooms}", i))
            acked_at.append(time.monotonic())

    async with httpx.AsyncClient() as http:
        base, hist0 = await scrape(http, url)
        samples: list[tuple[float, float]] = []
        cpu0, t0 = worker.cpu_seconds(), time.monotonic()
        producing = asyncio.gather(*(append(i) for i in range(count)))
        while True:
            stored, _ = await scrape(http, url)
            samples.append((time.monotonic() - t0, stored - base))
            if stored - base >= count:
                break
            if samples[-1][0] > 300:
                raise RuntimeError(f"worker stored {stored - base}/{count} in 300 s")
            await asyncio.sleep(0.1)
        worker_cpu = worker.cpu_seconds() - cpu0
        await producing
        _, hist1 = await scrape(http, url)
    await kafka.close()

    def crossed(share: float) -> float:
        return next(t for t, n in samples if n >= share * count)

    t10, t90, t_all = crossed(0.1), crossed(0.9), crossed(1.0)
    produce_seconds = max(acked_at) - t0
    result = {
        "messages": count,
        "rooms": rooms,
        "appends_in_flight": inflight,
        "kafka_acked_appends_per_s": round(count / produce_seconds),
        "stored_per_s_sustained": round(0.8 * count / (t90 - t10)),
        "all_stored_after_s": round(t_all, 2),
        "worker_cpu_percent": round(100 * worker_cpu / t_all, 1),
        "stored_per_s_overall": round(count / t_all),
        "ingest_to_stored_p50_ms_histogram": _ms(histogram_quantile(0.5, hist0, hist1)),
        "ingest_to_stored_p99_ms_histogram": _ms(histogram_quantile(0.99, hist0, hist1)),
        **batches(hist0, hist1, count),
    }
    log(f"  burst: {result}")
    return result


async def produce(settings, count: int, rooms: int, inflight: int) -> dict:
    """``count`` appends, as fast as Kafka acks them, with no worker consuming yet."""
    kafka = KafkaMessageLog(settings)
    await kafka.start()
    ids = IdGenerator()
    gate = asyncio.Semaphore(inflight)

    async def append(i: int) -> None:
        async with gate:
            await kafka.append(message(ids, f"backlog-{i % rooms}", i))

    t0 = time.monotonic()
    await asyncio.gather(*(append(i) for i in range(count)))
    took = time.monotonic() - t0
    await kafka.close()
    return {"messages": count, "rooms": rooms, "kafka_acked_appends_per_s": round(count / took)}


async def drain(worker: Proc, url: str, count: int) -> dict:
    """The worker's stored counter sampled every 100 ms until the backlog is stored."""
    samples: list[tuple[float, float]] = []
    async with httpx.AsyncClient() as http:
        _, hist0 = await scrape(http, url)
        base = 0.0  # a fresh worker: everything it stored is from the backlog
        cpu0, t0 = worker.cpu_seconds(), time.monotonic()
        while True:
            stored, _ = await scrape(http, url)
            samples.append((time.monotonic() - t0, stored - base))
            if stored - base >= count:
                break
            if samples[-1][0] > 300:
                raise RuntimeError(f"worker stored {stored - base}/{count} of the backlog in 300 s")
            await asyncio.sleep(0.1)
        worker_cpu = worker.cpu_seconds() - cpu0
        _, hist1 = await scrape(http, url)

    def crossed(share: float) -> float:
        return next(t for t, n in samples if n >= share * count)

    t10, t90, t_all = crossed(0.1), crossed(0.9), crossed(1.0)
    result = {
        "stored_per_s_sustained": round(0.8 * count / (t90 - t10)),
        "all_stored_after_s": round(t_all, 2),
        "worker_cpu_percent": round(100 * worker_cpu / t_all, 1),
        **batches(hist0, hist1, count),
    }
    log(f"  drain: {result}")
    return result


async def steady(settings, url: str, rate: int, seconds: float, rooms: int) -> dict:
    """Appends at ``rate``/s; a poller notes when each id is readable through the store."""
    kafka = KafkaMessageLog(settings)
    store = CassandraMessageStore(settings)
    await kafka.start()
    await store.start()
    ids = IdGenerator()
    room_ids = [f"steady-{r}" for r in range(rooms)]
    acked: dict[str, float] = {}
    seen: dict[str, float] = {}
    # Per room: ids sent and not seen yet, and a floor below which everything was seen. The
    # poller reads ``after(room, floor)``, so no id is skipped however big a stored batch is.
    unseen: dict[str, set[str]] = {r: set() for r in room_ids}
    floor = dict.fromkeys(room_ids, lowest_id_at(int(time.time() * 1000) - 1000))
    cycles: list[float] = []
    done = asyncio.Event()

    async def append(i: int) -> None:
        m = message(ids, room_ids[i % rooms], i)
        unseen[m.room_id].add(m.id)
        await kafka.append(m)
        acked[m.id] = time.monotonic()

    async def read(room: str) -> None:
        page, _ = await store.after(room, floor[room], 5000)
        now = time.monotonic()
        for m in page:
            seen.setdefault(m.id, now)
            unseen[room].discard(m.id)
        lowest_unseen = min(unseen[room], default=None)
        below = [m.id for m in page if lowest_unseen is None or m.id < lowest_unseen]
        if below:
            floor[room] = max(floor[room], max(below))

    async def poll() -> None:
        while not done.is_set():
            started = time.monotonic()
            await asyncio.gather(*(read(r) for r in room_ids))
            cycles.append(time.monotonic() - started)

    async with httpx.AsyncClient() as http:
        _, hist0 = await scrape(http, url)
        poller = asyncio.create_task(poll())
        tasks = []
        tick, sent, t0 = 0.01, 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            due = int((time.monotonic() - t0) * rate)
            tasks += [asyncio.create_task(append(i)) for i in range(sent, due)]
            sent = due
            await asyncio.sleep(tick)
        await asyncio.gather(*tasks)
        deadline = time.monotonic() + 60
        while set(acked) - set(seen) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        done.set()
        await poller
        _, hist1 = await scrape(http, url)
    await kafka.close()
    await store.close()
    latencies = [max(0.0, seen[i] - t) * 1000 for i, t in acked.items() if i in seen]
    result = {
        "rate_per_s": rate,
        "seconds": seconds,
        "messages": len(acked),
        "rooms": rooms,
        "never_seen": len(set(acked) - set(seen)),
        "ack_to_queryable_p50_ms": _round(percentile(latencies, 0.5)),
        "ack_to_queryable_p99_ms": _round(percentile(latencies, 0.99)),
        "poll_cycle_median_ms": _round(1000 * (median(cycles) or 0)),
        "ingest_to_stored_p50_ms_histogram": _ms(histogram_quantile(0.5, hist0, hist1)),
        "ingest_to_stored_p99_ms_histogram": _ms(histogram_quantile(0.99, hist0, hist1)),
        **batches(hist0, hist1, len(acked)),
    }
    log(f"  steady: {result}")
    return result


async def history(settings, size: int, reads: int) -> dict:
    """Newest-50 and middle-page latencies on a room of ``size`` messages."""
    store = CassandraMessageStore(settings)
    await store.start()
    ids = IdGenerator()
    room = "history-room"
    messages = [message(ids, room, i) for i in range(size)]
    for start in range(0, size, 500):
        await store.write(messages[start : start + 500])
    middle = messages[size // 2].id
    assert len(await store.recent(room, 50)) == 50
    out: dict[str, Any] = {"room_messages": size, "reads": reads}
    for name, read in (
        ("newest_50", lambda: store.recent(room, 50)),
        ("page_before_middle_50", lambda: store.before(room, middle, 50)),
    ):
        for _ in range(20):  # warm-up: prepared statements, caches, connections
            await read()
        took = []
        for _ in range(reads):
            started = time.perf_counter()
            await read()
            took.append((time.perf_counter() - started) * 1000)
        out[name] = {
            "p50_ms": _round(percentile(took, 0.5)),
            "p99_ms": _round(percentile(took, 0.99)),
            "mean_ms": _round(sum(took) / len(took)),
        }
    await store.close()
    log(f"  history: {out}")
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = engines.bench_settings(engines.run_id(), "persist")
    await engines.provision(settings)
    worker = None
    results: dict[str, Any] = {}
    try:
        if args.backlog:
            log(f"persistence backlog: {args.backlog} messages appended before the worker starts")
            results["backlog"] = await produce(settings, args.backlog, 50, args.inflight)
        worker, url = parley("worker", "persistence", engines.service_env(settings), args.logs)
        await asyncio.to_thread(worker.wait_http, url + "/readyz")
        if args.backlog:
            results["backlog"].update(await drain(worker, url, args.backlog))
        log(f"persistence burst: {args.messages} messages")
        results["burst"] = await burst(settings, worker, url, args.messages, 50, args.inflight)
        rate = min(args.steady_rate, results["burst"]["stored_per_s_sustained"] // 2)
        log(f"persistence steady: {rate}/s for {args.steady_seconds}s")
        results["steady"] = await steady(settings, url, rate, args.steady_seconds, 10)
        log(f"history reads on a room of {args.history_size} messages")
        results["history"] = await history(settings, args.history_size, args.reads)
        return results
    finally:
        if worker is not None:
            await asyncio.to_thread(worker.stop)
        await engines.remove(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--backlog", type=int, default=0, help="messages queued before the worker")
    parser.add_argument("--steady-rate", type=int, default=1000)
    parser.add_argument("--steady-seconds", type=float, default=10)
    parser.add_argument("--history-size", type=int, default=5000)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    args.logs = args.out / "logs"
    write_json(args.out / "persistence.json", asyncio.run(run(args)))


if __name__ == "__main__":
    main()
