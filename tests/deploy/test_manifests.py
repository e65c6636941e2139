"""deploy/k8s: the plain manifests are the chart's render (no drift), the kustomize overlays
build to exactly what the chart renders for them, and every YAML there validates strictly."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import K8S, KUBE_VERSIONS, REPO, docs, ok, run

RENDER = K8S / "render.py"


def _rerender(helm: str, out: Path) -> None:
    env = {**os.environ, "HELM": helm}
    subprocess.run([sys.executable, str(RENDER), "--out", str(out)], check=True, env=env)


def _generated(root: Path) -> list[Path]:
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*.yaml")
        if p.parts[len(root.parts)] in ("base", "overlays")
    )


def test_committed_manifests_equal_a_fresh_render(helm, tmp_path):
    _rerender(helm, tmp_path)
    fresh, committed = _generated(tmp_path), _generated(K8S)
    assert fresh == committed, "files differ: run `make k8s-render` and commit"
    changed = [str(p) for p in fresh if not filecmp.cmp(tmp_path / p, K8S / p, shallow=False)]
    assert not changed, f"deploy/k8s drifted from the chart: {changed}; run `make k8s-render`"


def test_drift_is_detected(helm, tmp_path):
    """The check above can fail: a chart change shows up as a difference."""
    import shutil

    chart = tmp_path / "repo" / "deploy" / "helm" / "parley"
    shutil.copytree(REPO / "deploy" / "helm" / "parley", chart)
    shutil.copytree(K8S, tmp_path / "repo" / "deploy" / "k8s")
    hpa = chart / "templates" / "gateway-hpa.yaml"
    hpa.write_text(
        hpa.read_text().replace("value: 100, periodSeconds: 60", "value: 50, periodSeconds: 60")
    )
    env = {**os.environ, "HELM": helm}
    out = tmp_path / "out"
    script = tmp_path / "repo" / "deploy" / "k8s" / "render.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True, env=env)
    changed = [str(p) for p in _generated(out) if not filecmp.cmp(out / p, K8S / p, shallow=False)]
    assert changed == ["overlays/production/resources.yaml"]


def _key(o: dict) -> tuple:
    return (o["kind"], o["metadata"]["name"])


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_overlay_builds_to_the_charts_render(k8s_tools, helm, overlay):
    """`kubectl kustomize overlays/X` == `helm template -f values/base.yaml -f values/X.yaml`."""
    built = docs(ok([k8s_tools["kubectl"], "kustomize", str(K8S / "overlays" / overlay)]))
    cmd = [helm, "template", "parley", str(REPO / "deploy/helm/parley"), "-n", "parley"]
    cmd += ["--skip-tests", "--kube-version", "1.37.0"]
    cmd += ["-f", str(K8S / "values/base.yaml"), "-f", str(K8S / f"values/{overlay}.yaml")]
    rendered = docs(ok(cmd))
    assert sorted(map(_key, built)) == sorted(map(_key, rendered))
    by_key = {_key(o): o for o in rendered}
    for o in built:
        assert o == by_key[_key(o)], f"{_key(o)} differs between kustomize and helm"


def _all_yaml() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in (".yaml", ".yml"))


def _objects(path: Path) -> list[dict]:
    """Kubernetes objects of a file (kustomizations, values files and patches excluded)."""
    return [
        d
        for d in yaml.safe_load_all(path.read_text())
        if isinstance(d, dict)
        and "kind" in d
        and "apiVersion" in d
        and not d["apiVersion"].startswith("kustomize.config.k8s.io")
    ]


@pytest.mark.parametrize("kv", KUBE_VERSIONS)
def test_every_yaml_under_deploy_k8s_validates(venvs, kv, tmp_path):
    """All of deploy/k8s, including deploy/k8s/loadtest/ when present."""
    files = _all_yaml()
    assert files
    to_check = []
    for path in files:
        objs = _objects(path)  # also proves the file parses
        if objs:
            dest = tmp_path / str(path.relative_to(K8S)).replace("/", "__")
            dest.write_text(yaml.safe_dump_all(objs))
            to_check.append(dest)
    assert len(to_check) >= 3
    proc = run(
        [str(venvs["validate"] / "kubernetes-validate"), "-k", kv, "--strict", "--quiet"]
        + [str(p) for p in to_check]
    )
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 0 and not errors, proc.stdout + proc.stderr
