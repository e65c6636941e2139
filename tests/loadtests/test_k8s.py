"""The Kubernetes manifests for locust (deploy/k8s/loadtest/): the scenario ConfigMap matches
loadtests/, the objects reference each other consistently, the settings parse, and the
master Job's and worker Deployment's own commands run a real distributed test against the
stack (paths, host and ports swapped for local ones)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import k8s_configmap
import pytest
import yaml
from lt_config import LoadConfig

from tests.support.procs import ROOT, free_port

from .conftest import QUIET_THRESHOLDS

K8S = ROOT / "deploy" / "k8s" / "loadtest"


def objects() -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def pod(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def test_scenario_configmap_is_generated_from_loadtests():
    committed = (K8S / "scenarios.yaml").read_text()
    assert committed == k8s_configmap.render(), (
        "deploy/k8s/loadtest/scenarios.yaml is stale: "
        "python loadtests/k8s_configmap.py > deploy/k8s/loadtest/scenarios.yaml"
    )
    data = objects()[("ConfigMap", "parley-loadtest-scenarios")]["data"]
    for name, text in data.items():
        assert text == (ROOT / "loadtests" / name).read_text(), name
    assert {"locustfile.py", "report.py", "lt_user.py", "lt_scenarios.py"} <= set(data)


def test_manifests_reference_each_other():
    objs = objects()
    configmaps = {name for kind, name in objs if kind == "ConfigMap"}
    service = objs[("Service", "parley-loadtest-master")]
    master = objs[("Job", "parley-loadtest-master")]
    workers = objs[("Deployment", "parley-loadtest-worker")]
    master_labels = master["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= master_labels.items()
    worker_labels = workers["spec"]["template"]["metadata"]["labels"]
    assert workers["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()
    assert not service["spec"]["selector"].items() <= worker_labels.items()
    for obj in (master, workers):
        spec = pod(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True
        for c in spec["containers"]:
            assert ":" in c["image"] and not c["image"].endswith(":latest")
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert "limits" in c["resources"]
            for ref in c.get("envFrom", []):
                assert ref["configMapRef"]["name"] in configmaps
        for v in spec["volumes"]:
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps
    command = pod(workers)["containers"][0]["command"]
    assert command[command.index("--master-host") + 1] == service["metadata"]["name"]
    port = int(command[command.index("--master-port") + 1])
    assert port == service["spec"]["ports"][0]["port"]
    settings = objs[("ConfigMap", "parley-loadtest-settings")]["data"]
    run = objs[("ConfigMap", "parley-loadtest-run")]["data"]
    replicas = workers["spec"]["replicas"]
    assert int(settings["PARLEY_LT_WORKERS"]) == int(run["LOCUST_EXPECT_WORKERS"]) == replicas
    fields = {f"PARLEY_LT_{name.upper()}" for name in LoadConfig.__dataclass_fields__}
    assert set(settings) <= fields, set(settings) - fields
    assert not any(k.startswith("LOCUST_") for k in settings)  # workers must not get run options
    LoadConfig.from_env(settings)  # parses and validates


@pytest.mark.e2e
def test_manifest_commands_run_a_distributed_test(
    make_up_stack, locust_python, lt_tokens, tmp_path
):
    objs = objects()
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name, text in objs[("ConfigMap", "parley-loadtest-scenarios")]["data"].items():
        (scenarios / name).write_text(text)
    reports = tmp_path / "reports"
    port = str(free_port())
    env = {
        **os.environ,
        **objs[("ConfigMap", "parley-loadtest-settings")]["data"],
        **objs[("ConfigMap", "parley-loadtest-run")]["data"],
        "PATH": f"{Path(locust_python).parent}:{os.environ['PATH']}",
        "PARLEY_LT_TOKENS_FILE": str(lt_tokens),
        "PARLEY_LT_THRESHOLDS": QUIET_THRESHOLDS,
        "PARLEY_LT_CHATTY_ROOMS": "2",
        "LOCUST_HOST": make_up_stack.url,
        "LOCUST_USERS": "6",
        "LOCUST_SPAWN_RATE": "6",
        "LOCUST_RUN_TIME": "8s",
        "LOCUST_MASTER_BIND_HOST": "127.0.0.1",
        "LOCUST_MASTER_BIND_PORT": port,
        "PARLEY_LT_KEEP_SECONDS": "0",
    }
    master = pod(objs[("Job", "parley-loadtest-master")])["containers"][0]
    script = master["args"][0].replace("/scenarios", str(scenarios))
    script = script.replace("/reports", str(reports))
    worker = pod(objs[("Deployment", "parley-loadtest-worker")])["containers"][0]["command"]
    worker = [
        {"/scenarios/locustfile.py": str(scenarios / "locustfile.py")}.get(a, a) for a in worker
    ]
    worker[worker.index("--master-host") + 1] = "127.0.0.1"
    worker[worker.index("--master-port") + 1] = port
    procs = [
        subprocess.Popen(worker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(int(env["PARLEY_LT_WORKERS"]))
    ]
    try:
        done = subprocess.run(
            [*master["command"], script], env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Verdict: pass" in done.stdout  # the summary printed to the pod log
    meta = json.loads((reports / "run" / "locust_parley.json").read_text())
    assert meta["workers"] == 2 and meta["delivery_ratio"] == 1.0
    assert meta["counts"]["delivered"] > 0
    for name in ("summary.md", "latency.png", "report.html", "locust_stats_history.csv"):
        assert (reports / "run" / name).stat().st_size > 0, name
