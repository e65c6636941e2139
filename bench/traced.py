"""``python -m bench.traced``: the gateway (``python -m services.gateway``) under tracemalloc.

SIGUSR1 writes a snapshot to ``$PARLEY_TRACEMALLOC_DIR/snapshot.snap`` (then touches
``snapshot.done``); ``bench.idle_conns --tracemalloc`` diffs two of them. Benchmark use only.
"""

from __future__ import annotations

import gc
import os
import runpy
import signal
import tracemalloc
from pathlib import Path
from types import FrameType


def _dump(_signum: int, _frame: FrameType | None) -> None:
    out = Path(os.environ["PARLEY_TRACEMALLOC_DIR"])
    gc.collect()
    tracemalloc.take_snapshot().dump(str(out / "snapshot.snap"))
    (out / "snapshot.done").touch()


def main() -> None:
    tracemalloc.start(int(os.environ.get("PARLEY_TRACEMALLOC_FRAMES", "1")))
    signal.signal(signal.SIGUSR1, _dump)
    runpy.run_module("services.gateway", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
