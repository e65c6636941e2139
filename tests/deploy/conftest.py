"""Fixtures of the deploy layer: the pinned tools (built on first use, cached under
~/.cache/parley), the chart's renders per ci value set, and a real control plane."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.deploy.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "parley"
K8S = REPO / "deploy" / "k8s"
TOOLS = REPO / "deploy" / "tools"
CI_SETS = sorted(p.stem.removesuffix("-values") for p in (CHART / "ci").glob("*-values.yaml"))
# Oldest and newest Kubernetes minor versions the chart supports (Chart.yaml kubeVersion).
KUBE_VERSIONS = ("1.30", "1.37")
NAMESPACE = "parley"


def _build(*what: str) -> dict[str, str]:
    """Build (or find cached) tools; returns name -> path."""
    t0 = time.monotonic()
    subprocess.run(["bash", str(TOOLS / "build.sh"), *what], check=True)
    out = subprocess.run(
        ["bash", str(TOOLS / "build.sh"), "--print"], check=True, capture_output=True, text=True
    ).stdout
    paths = dict(line.split("=", 1) for line in out.split())
    took = time.monotonic() - t0
    if took > 5:
        print(f"\n[deploy] tools {what} ready in {took:.0f} s")
    return {
        "helm": paths["HELM"],
        "etcd": paths["ETCD"],
        "kube-apiserver": paths["KUBE_APISERVER"],
        "kubectl": paths["KUBECTL"],
        "kube-controller-manager": paths["KUBE_CONTROLLER_MANAGER"],
        "kube-scheduler": paths["KUBE_SCHEDULER"],
    }


@pytest.fixture(scope="session")
def helm() -> str:
    return _build("helm")["helm"]


@pytest.fixture(scope="session")
def venvs() -> dict[str, Path]:
    subprocess.run(["bash", str(TOOLS / "venv.sh"), "validate", "checkov"], check=True)
    root = Path(os.environ.get("PARLEY_VENVS_DIR", Path.home() / ".cache/parley/venvs"))
    return {"validate": root / "validate" / "bin", "checkov": root / "checkov" / "bin"}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a tool; on failure the assertion shows the command and its output."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    proc = subprocess.run(cmd, **kw)
    return proc


def ok(cmd: list[str], **kw) -> str:
    proc = run(cmd, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def template(
    helm: str, *args: str, values: list[Path] | None = None, namespace: str = NAMESPACE
) -> str:
    cmd = [helm, "template", "t", str(CHART), "--namespace", namespace]
    for v in values or []:
        cmd += ["-f", str(v)]
    return ok(cmd + list(args))


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def ci_values(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


@pytest.fixture(scope="session")
def renders(helm, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(ci set, kube version) -> rendered manifest file (tests included)."""
    out = tmp_path_factory.mktemp("renders")
    result = {}
    for name in CI_SETS:
        for kv in KUBE_VERSIONS:
            # One namespace per set, so checkov's graph checks never pair objects across sets.
            text = template(
                helm, "--kube-version", f"{kv}.0", values=[ci_values(name)], namespace=f"ci-{name}"
            )
            path = out / f"{name}-{kv}.yaml"
            path.write_text(text)
            result[(name, kv)] = path
    return result


@pytest.fixture(scope="session")
def k8s_tools() -> dict[str, str]:
    return _build("helm", "etcd", "kube", "kube-extra")


@pytest.fixture(scope="package")  # stopped when tests/deploy ends, not with the whole run
def cluster(k8s_tools, tmp_path_factory) -> Iterator[ControlPlane]:
    t0 = time.monotonic()
    cp = ControlPlane(tools=k8s_tools, workdir=tmp_path_factory.mktemp("controlplane"))
    try:
        cp.start(controllers=True)
        print(f"\n[deploy] control plane up in {time.monotonic() - t0:.1f} s ({cp.workdir})")
        yield cp
    finally:
        cp.stop()
