"""Metrics every Parley process exposes: ``parley_build_info`` and readiness.

``parley_build_info{service, version, commit}`` is 1 (the labels carry the information).
``version`` comes from ``PARLEY_VERSION`` or pyproject.toml, ``commit`` from
``PARLEY_COMMIT`` (set it in images) or the checkout's ``.git`` (read as files, no subprocess).

``parley_ready`` (1/0) and ``parley_readiness_check{check}`` (1/0 per check) are set from the
same checks as ``/readyz``, evaluated when ``/metrics`` is scraped, so Prometheus sees
readiness without a probe having to run (``observe_readiness``).
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import Gauge, disable_created_metrics

ROOT = Path(__file__).resolve().parents[2]
disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twin of every counter: half the series, no loss

BUILD_INFO = Gauge(
    "parley_build_info",
    "Always 1; the labels name the service, its version and the commit it was built from.",
    ["service", "version", "commit"],
)
READY = Gauge(
    "parley_ready",
    "1 while the process is ready (every required readiness check passes), else 0.",
)
READINESS_CHECK = Gauge(
    "parley_readiness_check",
    "1 while the named readiness check passes (optional checks included), else 0.",
    ["check"],
)


def version() -> str:
    if os.environ.get("PARLEY_VERSION"):
        return os.environ["PARLEY_VERSION"]
    try:
        return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def commit() -> str:
    """The commit from ``PARLEY_COMMIT``, else the checkout's HEAD (worktrees included)."""
    if os.environ.get("PARLEY_COMMIT"):
        return os.environ["PARLEY_COMMIT"][:12]
    try:
        git = ROOT / ".git"
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            common = git
            if (git / "commondir").is_file():
                common = (git / (git / "commondir").read_text().strip()).resolve()
            for base in (git, common):
                if (base / ref).is_file():
                    return (base / ref).read_text().strip()[:12]
            packed = (common / "packed-refs").read_text().splitlines()
            return next(line.split()[0][:12] for line in packed if line.endswith(" " + ref))
        return head[:12]
    except (OSError, IndexError, StopIteration):
        return "unknown"


def service_name() -> str:
    """``gateway`` for ``python -m services.gateway`` (and so on), else the main module's name."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    parts = (spec.name if spec is not None else "unknown").split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" else parts[0]


def set_build_info(service: str | None = None) -> None:
    BUILD_INFO.clear()
    BUILD_INFO.labels(service or service_name(), version(), commit()).set(1)


set_build_info()


def observe_readiness(results: Mapping[str, bool], optional: frozenset[str] = frozenset()) -> None:
    for name, ok in results.items():
        READINESS_CHECK.labels(name).set(1 if ok else 0)
    READY.set(1 if all(ok for name, ok in results.items() if name not in optional) else 0)
