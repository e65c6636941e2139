"""Distributed mode: one master and two worker processes (explicit ``--master``/``--worker``);
the master's report is the sum of what each worker measured."""

from __future__ import annotations

import json

import pytest

from tests.support.procs import free_port

pytestmark = pytest.mark.e2e


def test_master_sums_two_workers(load, tmp_path):
    run = load(
        "chatty",
        8,
        env={"PARLEY_LT_WORKER_STATS_DIR": str(tmp_path), "PARLEY_LT_CHATTY_ROOMS": "2"},
        args=("--workers", "2", "--master-port", str(free_port())),
    )
    assert run.code == 0, run.output[-3000:]
    workers = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("worker-*.json"))]
    assert len(workers) == 2 and run.meta["workers"] == 2
    for name in ("ack chat:message", "deliver chat:message", "connect websocket"):
        mine = [w["requests"].get(name, 0) for w in workers]
        assert all(n > 0 for n in mine), (name, mine)
        kind, _, label = name.partition(" ")
        assert run.requests(kind, label) == sum(mine), (name, mine)
    for key in ("messages_acked", "delivered", "expected"):
        assert run.counts[key] == sum(w["parley"].get(key, 0) for w in workers), key
    assert run.meta["delivery_ratio"] == 1.0
