"""py-spy profiles of a running gateway: collapsed stacks, a top-N table, a flame graph SVG.

``record(pid, seconds, out, name)`` samples the process with ``py-spy record --format raw
--function`` (collapsed stacks, one ``frame;frame;... count`` per line, frames aggregated by
function) and writes to ``out/profile/``:

- ``<name>.collapsed.txt``: py-spy's raw output (any flame graph tool reads it);
- ``<name>-top.md``: functions by self time (the leaf of a sample) and by total time (on the
  stack at all), as percentages of the samples;
- ``<name>.svg``: a flame graph of the event loop's thread (icicle: callers on top), drawn here
  from the collapsed stacks; hover a frame for its name, samples and share.

py-spy attaches with ptrace (root here); when it is missing or cannot attach the result says
why instead of failing the benchmark.
"""

from __future__ import annotations

import hashlib
import html
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .common import ROOT, log

RATE = 100  # samples/s (py-spy's default)


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, seconds: int, out: Path, name: str, top: int = 30) -> dict[str, Any]:
    exe = py_spy()
    if exe is None:
        log("  py-spy not installed (pip install -r requirements-dev.txt): no profile")
        return {"error": "py-spy not installed"}
    directory = out / "profile"
    directory.mkdir(parents=True, exist_ok=True)
    raw = directory / f"{name}.collapsed.txt"
    argv = [exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(RATE)]
    argv += ["--format", "raw", "--function", "--threads", "--output", str(raw)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if result.returncode != 0 or not raw.exists():
        why = (result.stderr or result.stdout).strip()[-500:]
        log(f"  py-spy failed ({result.returncode}): {why}")
        return {"error": f"py-spy exit {result.returncode}: {why}"}
    stacks = parse(raw.read_text())
    total = sum(stacks.values())
    main = main_thread(stacks)
    table = top_table(stacks, main, top)
    (directory / f"{name}-top.md").write_text(table)
    title = f"{name}: event loop thread, {sum(main.values())} samples"
    (directory / f"{name}.svg").write_text(flamegraph(main, title))
    self_rows = top_self(main, top)
    log(f"  py-spy: {total} samples in {seconds}s -> {directory}/{name}.svg, {name}-top.md")
    return {
        "samples": total,
        "main_thread_samples": sum(main.values()),
        "threads": threads(stacks),
        "seconds": seconds,
        "rate_hz": RATE,
        "svg": f"profile/{name}.svg",
        "table": f"profile/{name}-top.md",
        "collapsed": f"profile/{name}.collapsed.txt",
        "top_self": [{"function": f, "samples": n, "percent": p} for f, n, p in self_rows],
    }


def parse(text: str) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (``a;b;c 12``) → {(a, b, c): 12}, frames shortened."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(short(f) for f in stack.split(";"))] += int(count)
    return stacks


def short(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` → ``func (pkg/mod.py:12)``."""
    for prefix in ("site-packages/", str(ROOT) + "/", "lib/python3."):
        head, sep, tail = frame.partition(prefix)
        if sep:
            if prefix == "lib/python3.":
                tail = "stdlib/" + tail.split("/", 1)[-1]
            paren = head.rfind("(")
            return f"{head[: paren + 1]}{tail}" if paren >= 0 else tail
    return frame


def threads(stacks: Counter[tuple[str, ...]]) -> dict[str, int]:
    """Samples per thread (the root frame, ``thread (tid): name``)."""
    out: Counter[str] = Counter()
    for stack, count in stacks.items():
        out[stack[0]] += count
    return dict(out.most_common())


def main_thread(stacks: Counter[tuple[str, ...]]) -> Counter[tuple[str, ...]]:
    """The stacks of the event loop's thread (``MainThread``), without the thread frame."""
    return Counter(
        {s[1:]: c for s, c in stacks.items() if s[0].endswith(": MainThread") and len(s) > 1}
    )


def top_self(stacks: Counter[tuple[str, ...]], n: int) -> list[tuple[str, int, float]]:
    total = sum(stacks.values()) or 1
    leaf: Counter[str] = Counter()
    for stack, count in stacks.items():
        leaf[stack[-1]] += count
    return [(f, c, round(100 * c / total, 1)) for f, c in leaf.most_common(n)]


def top_total(stacks: Counter[tuple[str, ...]], n: int) -> list[tuple[str, int, float]]:
    total = sum(stacks.values()) or 1
    inclusive: Counter[str] = Counter()
    for stack, count in stacks.items():
        for frame in set(stack):
            inclusive[frame] += count
    return [(f, c, round(100 * c / total, 1)) for f, c in inclusive.most_common(n)]


def top_table(stacks: Counter[tuple[str, ...]], main: Counter[tuple[str, ...]], n: int) -> str:
    total = sum(stacks.values())
    out = [
        f"py-spy: {total} samples at {RATE} Hz over every thread (frames aggregated by "
        "function; py-spy counts a thread only when it is not idle, but threads blocked in C "
        "such as the executor's `_worker` waiting on its queue still show up).",
        "",
        "| thread | samples |",
        "| --- | ---: |",
    ]
    out += [f"| {t} | {c} |" for t, c in threads(stacks).items()]
    out += [
        "",
        f"The tables below are the event loop's thread (MainThread, {sum(main.values())} "
        "samples; % of those), where the gateway's Python work runs.",
        "",
        f"### Top {n} by self time (the function was running)",
        "",
        "| # | self % | samples | function (file:first line) |",
        "| ---: | ---: | ---: | --- |",
    ]
    for i, (f, c, p) in enumerate(top_self(main, n), 1):
        out.append(f"| {i} | {p} | {c} | `{f}` |")
    out += [
        "",
        f"### Top {n} by total time (on the stack)",
        "",
        "| # | total % | samples | function (file:first line) |",
        "| ---: | ---: | ---: | --- |",
    ]
    for i, (f, c, p) in enumerate(top_total(main, n), 1):
        out.append(f"| {i} | {p} | {c} | `{f}` |")
    return "\n".join(out) + "\n"


def flamegraph(stacks: Counter[tuple[str, ...]], title: str, width: int = 1200) -> str:
    """An icicle flame graph (root on top) as a standalone SVG."""
    tree: dict[str, Any] = {"n": 0, "kids": {}}
    for stack, count in stacks.items():
        node = tree
        node["n"] += count
        for frame in stack:
            node = node["kids"].setdefault(frame, {"n": 0, "kids": {}})
            node["n"] += count
    total = tree["n"] or 1
    row, top_pad = 17, 28
    rects: list[str] = []
    depth_max = 0

    def walk(node: dict[str, Any], x: float, depth: int) -> None:
        nonlocal depth_max
        for name, kid in sorted(node["kids"].items()):
            w = width * kid["n"] / total
            if w >= 0.3:
                depth_max = max(depth_max, depth)
                y = top_pad + depth * row
                label = html.escape(name)
                tip = f"{label} ({kid['n']} samples, {100 * kid['n'] / total:.1f}%)"
                chars = int((w - 6) / 7)
                text = ""
                if chars >= 3:
                    shown = name if len(name) <= chars else name[: chars - 2] + ".."
                    text = f'<text x="{x + 3:.1f}" y="{y + 12}">{html.escape(shown)}</text>'
                rects.append(
                    f'<g><title>{tip}</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" '
                    f'height="{row - 1}" fill="{color(name)}" rx="2"/>{text}</g>'
                )
                walk(kid, x, depth + 1)
            x += w

    walk(tree, 0.0, 0)
    height = top_pad + (depth_max + 1) * row + 8
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace" font-size="11">'
        f'<rect width="100%" height="100%" fill="#fdfdf6"/>'
        f'<text x="4" y="18" font-size="14">{html.escape(title)} (hover a frame)</text>'
        + "".join(rects)
        + "</svg>\n"
    )


def color(name: str) -> str:
    """Warm colours, stable per function; Parley's own code (services/) in blue."""
    h = int(hashlib.md5(name.encode()).hexdigest()[:6], 16)
    if "(services/" in name:
        return f"rgb({90 + h % 50},{150 + (h >> 8) % 60},{220 + (h >> 16) % 35})"
    return f"rgb({220 + h % 35},{(h >> 8) % 180 + 40},{(h >> 16) % 60})"
