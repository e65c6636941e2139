"""The chart and the plain manifests against a real Kubernetes control plane on loopback:
etcd + kube-apiserver + kube-controller-manager + kube-scheduler, no kubelet (pods are created
and scheduled, never run). Namespaces enforce the `restricted` Pod Security Standard, so every
Pod the controllers create from the chart's templates passes that admission for real."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import CHART, CI_SETS, K8S, ci_values, docs, ok, run

CRDS = Path(__file__).with_name("crds.yaml")
RELEASE = "rel"
FAKE_TAINT = "parley.test/no-kubelet"
ZONES = ("zone-a", "zone-b", "zone-c")


def kubectl(cluster, *args: str, check: bool = True) -> str:
    cmd = [cluster.tools["kubectl"], *args]
    if check:
        return ok(cmd, env=cluster.env())
    return run(cmd, env=cluster.env()).stdout


def helm(cluster, *args: str) -> str:
    return ok([cluster.tools["helm"], *args], env=cluster.env())


def get(cluster, *args: str) -> dict:
    return json.loads(kubectl(cluster, "get", *args, "-o", "json"))


def eventually(what: str, probe, timeout: float = 60.0, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not true within {timeout}s (last: {last!r})")


def namespace(cluster, name: str) -> str:
    kubectl(cluster, "create", "namespace", name)
    for mode in ("enforce", "warn"):
        kubectl(
            cluster, "label", "namespace", name, f"pod-security.kubernetes.io/{mode}=restricted"
        )
    return name


@pytest.fixture(scope="module")
def api(cluster):
    """The control plane with the test CRDs established."""
    kubectl(cluster, "apply", "--server-side", "-f", str(CRDS))
    for crd in yaml.safe_load_all(CRDS.read_text()):
        name = crd["metadata"]["name"]
        kubectl(cluster, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return cluster


def test_server_is_the_pinned_version(api):
    version = json.loads(kubectl(api, "version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == "v1.37.2"
    assert version["clientVersion"]["gitVersion"] == "v1.37.2"


def _expected(helm_bin: str, ci: str, ns: str) -> set[tuple[str, str]]:
    """(kind, name) of the release's own objects (hooks and tests are not installed)."""
    out = ok(
        [helm_bin, "template", RELEASE, str(CHART), "-n", ns, "-f", str(ci_values(ci))]
        + ["--skip-tests", "--no-hooks"]
    )
    return {(o["kind"], o["metadata"]["name"]) for o in docs(out)}


@pytest.fixture(scope="module")
def installed(api) -> dict[str, str]:
    """Each ci set installed into its own namespace (`--no-hooks`: the pre-install migrate Job
    would wait for a kubelet forever; it is tested on its own below)."""
    out = {}
    for ci in CI_SETS:
        ns = namespace(api, f"ci-{ci}")
        helm(api, "install", RELEASE, str(CHART), "-n", ns, "-f", str(ci_values(ci)), "--no-hooks")
        out[ci] = ns
    return out


@pytest.mark.parametrize("ci", CI_SETS)
def test_helm_install_creates_every_object(api, installed, ci):
    ns = installed[ci]
    status = json.loads(helm(api, "status", RELEASE, "-n", ns, "-o", "json"))
    assert status["info"]["status"] == "deployed"
    for kind, name in sorted(_expected(api.tools["helm"], ci, ns)):
        kubectl(api, "get", kind, name, "-n", ns, "-o", "name")


@pytest.mark.parametrize("ci", CI_SETS)
def test_controllers_create_pods_that_pass_restricted_admission(api, installed, ci):
    """Deployment -> ReplicaSet -> Pods (StatefulSet -> Pods) with the chart's pod templates,
    admitted under `restricted`; none bound (no Node tolerates them), none running."""
    ns = installed[ci]
    workloads = get(api, "deployments,statefulsets", "-n", ns)["items"]
    assert workloads

    def pods_created() -> bool:
        pods = get(api, "pods", "-n", ns)["items"]
        owners = Counter(p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods)
        want = {}
        for w in get(api, "deployments,statefulsets", "-n", ns)["items"]:
            want[w["metadata"]["labels"]["app.kubernetes.io/component"]] = w["spec"]["replicas"]
        return bool(want) and all(owners[c] >= n for c, n in want.items()) and owners

    eventually(f"{ci}: pods created by the controllers", pods_created, timeout=90)

    def one_replicaset_each() -> list | None:
        """Each Deployment owns one ReplicaSet with its replicas (the HPA may still be
        scaling the production gateway, hence eventually)."""
        wrong = []
        for d in get(api, "deployments", "-n", ns)["items"]:
            component = d["metadata"]["labels"]["app.kubernetes.io/component"]
            sel = f"app.kubernetes.io/component={component}"
            rs = get(api, "replicasets", "-n", ns, "-l", sel)["items"]
            owners = [r["metadata"]["ownerReferences"][0]["name"] for r in rs]
            if (
                owners != [d["metadata"]["name"]]
                or rs[0]["spec"]["replicas"] != d["spec"]["replicas"]
            ):
                wrong.append((component, owners))
        return None if wrong else ["ok"]

    eventually(f"{ci}: one ReplicaSet per Deployment", one_replicaset_each, timeout=60)
    events = kubectl(api, "get", "events", "-n", ns, "--field-selector", "reason=FailedCreate")
    assert "violates PodSecurity" not in events, events
    pod = next(
        p
        for p in get(api, "pods", "-n", ns)["items"]
        if p["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
    )
    c = pod["spec"]["containers"][0]
    assert c["command"] == ["python", "-m", "services.gateway"]
    assert c["lifecycle"]["preStop"]["sleep"]["seconds"] == 5
    assert pod["spec"]["terminationGracePeriodSeconds"] == 35
    assert pod["status"]["phase"] == "Pending"


def test_hpa_raises_the_gateway_to_its_minimum(api, installed):
    """production: the Deployment has no replicas (defaults to 1); the HPA controller scales it
    to minReplicas even without a metrics API."""
    ns = installed["production"]

    def scaled() -> int:
        d = get(api, "deployment", "rel-parley-gateway", "-n", ns)
        return d["spec"]["replicas"] == 3 and d["spec"]["replicas"]

    eventually("HPA scales the gateway to minReplicas=3", scaled, timeout=90)


def test_upgrade_then_rollback(api, installed):
    ns = installed["minimal"]

    def state() -> tuple[int, dict, str]:
        d = get(api, "deployment", "rel-parley-gateway", "-n", ns)
        cm = get(api, "configmap", "rel-parley", "-n", ns)["data"]
        ann = d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return d["spec"]["replicas"], cm, ann

    replicas, cm, checksum = state()
    assert replicas == 2 and "PARLEY_LOG_LEVEL" not in cm
    helm(
        api,
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        ns,
        "--reuse-values",
        "--no-hooks",
        "--set",
        "gateway.replicas=3,config.PARLEY_LOG_LEVEL=debug",
    )
    replicas2, cm2, checksum2 = state()
    assert replicas2 == 3 and cm2["PARLEY_LOG_LEVEL"] == "debug"
    assert checksum2 != checksum, "a settings change must roll the pods (checksum/config)"

    def two_replicasets() -> bool:
        rs = get(api, "replicasets", "-n", ns, "-l", "app.kubernetes.io/component=gateway")
        return len(rs["items"]) == 2

    eventually("the changed pod template gives a new ReplicaSet", two_replicasets)
    helm(api, "rollback", RELEASE, "1", "-n", ns, "--no-hooks")
    replicas3, cm3, checksum3 = state()
    assert (replicas3, checksum3) == (2, checksum) and "PARLEY_LOG_LEVEL" not in cm3
    history = json.loads(helm(api, "history", RELEASE, "-n", ns, "-o", "json"))
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[-1]["status"] == "deployed"


def test_hook_job_and_test_pod_are_admitted(api):
    """The pre-install hooks (ServiceAccount, ConfigMap, Secret, Job) and the helm test Pod,
    applied on their own: the API accepts them, the Job controller makes its Pod, admission
    passes; they never complete here (no kubelet)."""
    ns = namespace(api, "ci-hooks")
    out = ok(
        [api.tools["helm"], "template", RELEASE, str(CHART), "-n", ns]
        + ["-f", str(ci_values("minimal"))]
        + ["--show-only", "templates/migrate-job.yaml", "--show-only", "templates/tests/smoke.yaml"]
        # the test Pod runs as the release's ServiceAccount, which exists when `helm test` runs
        + ["--show-only", "templates/serviceaccount.yaml"]
    )
    objs = docs(out)
    assert {o["kind"] for o in objs} == {"ServiceAccount", "ConfigMap", "Secret", "Job", "Pod"}
    # Pods last, as helm does: admission looks their ServiceAccount up in its cache.
    for step, part in enumerate(
        ([o for o in objs if o["kind"] != "Pod"], [o for o in objs if o["kind"] == "Pod"])
    ):
        manifest = Path(api.workdir) / f"hooks-{step}.yaml"
        manifest.write_text(yaml.safe_dump_all(part))
        eventually(
            "hook objects applied",
            lambda m=manifest: (
                run(
                    [api.tools["kubectl"], "apply", "--server-side", "-n", ns, "-f", str(m)],
                    env=api.env(),
                ).returncode
                == 0
            ),
            timeout=20,
        )

    def job_pod() -> dict | None:
        pods = get(api, "pods", "-n", ns, "-l", "job-name=rel-parley-migrate")["items"]
        return pods[0] if pods else None

    pod = eventually("the migrate Job creates its Pod", job_pod, timeout=60)
    c = pod["spec"]["containers"][0]
    assert c["command"] == ["python", "-m", "services.persistence.migrate"]
    assert pod["spec"]["serviceAccountName"] == "rel-parley-migrate"
    smoke = get(api, "pod", "rel-parley-smoke", "-n", ns)
    assert smoke["spec"]["containers"][0]["command"] == ["python", "/smoke/smoke.py"]
    kubectl(api, "delete", "namespace", ns, "--wait=false")


def test_install_with_hooks_runs_the_migrate_job_first(api):
    """A real `helm install` with hooks: helm creates the hook's ServiceAccount, ConfigMap and
    Secret (weight -5), then the Job, whose Pod the Job controller can create only because
    the ServiceAccount exists; the release's own objects wait for the hook. No kubelet runs the
    Pod, so helm gives up at its timeout and the release is failed with nothing else installed."""
    ns = namespace(api, "ci-hooked")
    proc = run(
        [api.tools["helm"], "install", RELEASE, str(CHART), "-n", ns]
        + ["-f", str(ci_values("minimal")), "--timeout", "10s"],
        env=api.env(),
    )
    assert proc.returncode != 0
    assert "pre-install" in proc.stderr and "rel-parley-migrate" in proc.stderr, proc.stderr
    pods = get(api, "pods", "-n", ns, "-l", "job-name=rel-parley-migrate")["items"]
    assert len(pods) == 1, "the Job controller created the migrate Pod"
    assert pods[0]["spec"]["serviceAccountName"] == "rel-parley-migrate"
    # helm removed the hook's own objects once its phase ended (hook-succeeded): nothing of the
    # hook is left but the Job, which it never saw complete.
    for kind in ("serviceaccount", "configmap", "secret"):
        assert not kubectl(api, "get", kind, "rel-parley-migrate", "-n", ns, "--ignore-not-found")
    assert not get(api, "deployments", "-n", ns)["items"], "workloads wait for the hook"
    status = json.loads(helm(api, "status", RELEASE, "-n", ns, "-o", "json"))
    assert status["info"]["status"] == "failed"
    kubectl(api, "delete", "namespace", ns, "--wait=false")


def test_httproute_alternative_is_accepted(api):
    """httpRoute.enabled (not in a ci set): the HTTPRoute applies under strict field
    validation against the test CRD, with and without cookie session persistence."""
    ns = namespace(api, "ci-httproute")
    for persistence in ("false", "true"):
        out = ok(
            [api.tools["helm"], "template", RELEASE, str(CHART), "-n", ns]
            + ["-f", str(ci_values("minimal")), "--show-only", "templates/httproute.yaml"]
            + ["--set", "httpRoute.enabled=true,httpRoute.parentRefs[0].name=public"]
            + [
                "--set",
                f"httpRoute.hostnames[0]=chat.example.com,httpRoute.sessionPersistence={persistence}",
            ]
        )
        manifest = Path(api.workdir) / "httproute.yaml"
        manifest.write_text(out)
        kubectl(api, "apply", "--server-side", "--field-manager=t", "-n", ns, "-f", str(manifest))
        route = get(api, "httproute", "rel-parley-gateway", "-n", ns)
        paths = [m["path"]["value"] for m in route["spec"]["rules"][0]["matches"]]
        assert paths == ["/socket.io", "/auth", "/files"]
        assert ("sessionPersistence" in route["spec"]["rules"][0]) == (persistence == "true")
    kubectl(api, "delete", "namespace", ns, "--wait=false")


def _leftovers(api, ns: str) -> list[str]:
    kinds = kubectl(api, "api-resources", "--verbs=list", "--namespaced", "-o", "name").split()
    kinds = [k for k in kinds if not k.startswith("events")]
    names = kubectl(api, "get", ",".join(kinds), "-n", ns, "-o", "name", "--ignore-not-found")
    allowed = {"serviceaccount/default", "configmap/kube-root-ca.crt"}
    return [n for n in names.split() if n not in allowed]


@pytest.mark.parametrize("ci", CI_SETS)
def test_uninstall_leaves_nothing(api, installed, ci):
    ns = installed[ci]
    assert _leftovers(api, ns), "nothing was installed?"
    helm(api, "uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "60s")
    deadline = time.monotonic() + 90
    while (left := _leftovers(api, ns)) and time.monotonic() < deadline:
        time.sleep(1)
    assert not left, f"left behind in {ns} after helm uninstall: {left}"


@pytest.mark.parametrize("target", ["base", "overlays/dev", "overlays/production"])
def test_plain_manifests_apply_server_side(api, target):
    """`kubectl apply --server-side --dry-run=server -k deploy/k8s/<target>` (strict fields)."""
    existing = kubectl(api, "get", "namespace", "parley", "--ignore-not-found", "-o", "name")
    if not existing:
        namespace(api, "parley")
    out = kubectl(api, "apply", "--server-side", "--dry-run=server", "-k", str(K8S / target))
    assert "serverside-applied (server dry run)" in out
    assert not kubectl(api, "get", "deployments", "-n", "parley", "-o", "name")


def test_loadtest_manifests_apply_server_side(api):
    """deploy/k8s/loadtest/ (another tool writes it) when present: every YAML applies."""
    root = K8S / "loadtest"
    files = (
        sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml")) if root.is_dir() else []
    )
    if not files:
        pytest.skip("deploy/k8s/loadtest/ has no manifests yet")
    for path in files:
        objs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        if path.name == "kustomization.yaml" or not any("kind" in o for o in objs):
            continue
        for ns in {o.get("metadata", {}).get("namespace") for o in objs} - {None}:
            if not kubectl(api, "get", "namespace", ns, "--ignore-not-found", "-o", "name"):
                kubectl(api, "create", "namespace", ns)
        named = all(o.get("metadata", {}).get("name") for o in objs if "kind" in o)
        # `apply` needs names; objects with only generateName (e.g. load Jobs) are created.
        verb = ["apply", "--server-side"] if named else ["create"]
        kubectl(api, *verb, "--dry-run=server", "-f", str(path))
    for d in {p.parent for p in files if p.name == "kustomization.yaml"}:
        kubectl(api, "apply", "--server-side", "--dry-run=server", "-k", str(d))


def test_gateway_pods_spread_across_zones(api, tmp_path):
    """Six Nodes in three zones (tainted so only this release's gateways land there): the
    scheduler places six gateway pods two per zone, one per node, by the chart's default
    topologySpreadConstraints."""
    nodes = [(f"node-{z}-{i}", z) for z in ZONES for i in (1, 2)]
    for name, zone in nodes:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": zone,
                    "kubernetes.io/os": "linux",
                },
            },
            "spec": {"taints": [{"key": FAKE_TAINT, "value": "true", "effect": "NoSchedule"}]},
        }
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(node))
        kubectl(api, "create", "-f", str(f))
        status = {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Test", "message": "t"}
                ],
                "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
            }
        }
        kubectl(
            api,
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(status),
        )
        # New Nodes get node.kubernetes.io/not-ready from admission; the node lifecycle
        # controller (off here: no kubelet renews leases) would lift it once Ready.
        kubectl(api, "taint", "node", name, "node.kubernetes.io/not-ready-", check=False)
    ns = namespace(api, "ci-spread")
    values = tmp_path / "spread.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "gateway": {
                    "replicas": 6,
                    "tolerations": [
                        {"key": FAKE_TAINT, "operator": "Exists", "effect": "NoSchedule"}
                    ],
                }
            }
        )
    )
    helm(
        api,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        ns,
        "-f",
        str(ci_values("minimal")),
        "-f",
        str(values),
        "--no-hooks",
    )
    zone_of = dict(nodes)

    def placed() -> Counter | None:
        pods = get(api, "pods", "-n", ns, "-l", "app.kubernetes.io/component=gateway")["items"]
        bound = [p["spec"].get("nodeName") for p in pods]
        if len(bound) == 6 and all(bound):
            return Counter(bound)
        return None

    per_node = eventually("six gateway pods bound to nodes", placed, timeout=120)
    per_zone = Counter()
    for node, n in per_node.items():
        per_zone[zone_of[node]] += n
    print(f"\n[deploy] gateway pods per zone {dict(per_zone)}, per node {dict(per_node)}")
    assert per_zone == {z: 2 for z in ZONES}, per_zone
    assert set(per_node.values()) == {1}, per_node
    # Cleanup: bound pods wait for a kubelet to confirm their end, so force them.
    helm(api, "uninstall", RELEASE, "-n", ns)
    kubectl(api, "delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force")
    kubectl(api, "delete", "nodes", *[n for n, _ in nodes])
