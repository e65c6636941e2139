"""``python -m bench.meta start DIR COMMAND`` / ``end DIR``: ``DIR/meta.json`` of a run (date,
command, machine, load average at start and end) for ``bench.report``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def start(directory: Path, command: str) -> None:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": command,
        "commit": commit or "?",
        "machine": f"{os.cpu_count()} cores ({cpu}), {mem / 1048576:.0f} GiB RAM, Linux "
        f"{platform.release()}, Python {platform.python_version()}, Node {node}",
        "load_start": round(os.getloadavg()[0], 2),
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def end(directory: Path) -> None:
    path = directory / "meta.json"
    meta = json.loads(path.read_text())
    meta["load_end"] = round(os.getloadavg()[0], 2)
    path.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "start":
        start(Path(sys.argv[2]), sys.argv[3])
    else:
        end(Path(sys.argv[2]))
