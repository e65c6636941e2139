"""The Helm chart without a cluster: lint, strict OpenAPI validation, policy scan, schema
refusals, and the promises the templates make (drain sizing, no /metrics or /api routed, ...)."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    CI_SETS,
    KUBE_VERSIONS,
    REPO,
    ci_values,
    docs,
    ok,
    run,
    template,
)

SECRET = "test-secret-0123456789abcdef0123456789abcdef"


def find(objs: list[dict], kind: str, name_suffix: str = "") -> dict:
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(hits) == 1, (
        f"expected one {kind} *{name_suffix}, got {[h['metadata'] for h in hits]}"
    )
    return hits[0]


def container(deploy: dict) -> dict:
    return deploy["spec"]["template"]["spec"]["containers"][0]


# --- lint and validation ----------------------------------------------------------------------


@pytest.mark.parametrize("name", CI_SETS)
def test_helm_lint_strict(helm, name):
    out = ok([helm, "lint", "--strict", str(CHART), "-f", str(ci_values(name))])
    assert "0 chart(s) failed" in out


def test_ci_sets_cover_the_three_shapes():
    assert set(CI_SETS) >= {"minimal", "production", "dev-with-engines"}


@pytest.mark.parametrize("kv", KUBE_VERSIONS)
@pytest.mark.parametrize("name", CI_SETS)
def test_render_validates_strictly(renders, venvs, name, kv):
    """Every object against the Kubernetes OpenAPI schema of that version, unknown fields refused.
    CRD kinds (ServiceMonitor, PrometheusRule, HTTPRoute) have no schema there: they are checked
    by the API server test against CRDs instead."""
    proc = run(
        [str(venvs["validate"] / "kubernetes-validate"), "-k", kv, "--strict", "--quiet"]
        + [str(renders[(name, kv)])]
    )
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 0 and not errors, proc.stdout + proc.stderr


def test_strict_validation_can_fail(renders, venvs, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(renders[("minimal", "1.37")].read_text().replace("maxSurge: 1", "maxSurgeX: 1"))
    proc = run([str(venvs["validate"] / "kubernetes-validate"), "--strict", "--quiet", str(bad)])
    assert proc.returncode != 0 and "maxSurgeX" in proc.stdout


# --- policy scan --------------------------------------------------------------------------------

SKIPS_FILE = Path(__file__).with_name("checkov-skips.yaml")


def test_checkov_no_unexplained_findings(renders, venvs, tmp_path):
    """checkov on each ci set; every finding must match a skip with a reason, and every skip
    must still match a finding (no stale excuses)."""
    skips = yaml.safe_load(SKIPS_FILE.read_text())["skips"]
    for s in skips:
        assert len(s.get("reason", "")) > 30, f"skip without a real reason: {s}"
    failed = []
    reports = []
    # One run per set: checkov's graph checks pair NetworkPolicies with pods by labels only.
    for name in CI_SETS:
        proc = run(
            [str(venvs["checkov"] / "checkov"), "-f", str(renders[(name, "1.37")])]
            + ["--framework", "kubernetes", "--quiet", "--compact", "-o", "json"]
            + ["--skip-download"]
        )
        report = json.loads(proc.stdout)
        for r in report if isinstance(report, list) else [report]:
            reports.append(r)
            for f in r["results"]["failed_checks"]:
                failed.append((name, f["check_id"], f["resource"].split(".")[0], f["resource"]))
    used = set()
    unexplained = []
    for ci, check, kind, resource in failed:
        match = [
            i
            for i, s in enumerate(skips)
            if s["check"] == check
            and ci in s["sets"]
            and (not s.get("kinds") or kind in s["kinds"])
            and (not s.get("names") or any(n in resource for n in s["names"]))
        ]
        if match:
            used.update(match)
        else:
            unexplained.append(f"{ci}: {check} {resource}")
    assert not unexplained, "checkov findings without an explained skip:\n" + "\n".join(
        sorted(set(unexplained))
    )
    stale = [skips[i] for i in range(len(skips)) if i not in used]
    assert not stale, f"skips that no longer match a finding: {stale}"
    passed = sum(r["summary"]["passed"] for r in reports)
    assert passed > 300


# --- schema and template refusals ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"gateway": {"replicas": -1}}, "at '/gateway/replicas': minimum: got -1, want 1"),
        ({"persistence": {"replicas": -3}}, "at '/persistence/replicas': minimum"),
        ({"gatewy": {"replicas": 2}}, "additional properties 'gatewy' not allowed"),
        ({"gateway": {"replcas": 2}}, "additional properties 'replcas' not allowed"),
        ({"image": {"tag": 1.5}}, "at '/image/tag': got number, want string"),
        ({"image": {"tag": 2}}, "at '/image/tag': got number, want string"),
        ({"presence": {"replicas": 1}}, "at '/presence/replicas': minimum: got 1, want 2"),
        ({"ingress": {"wsTimeoutSeconds": 60}}, "at '/ingress/wsTimeoutSeconds': minimum"),
        ({"kafka": {"securityProtocol": "TLS"}}, "at '/kafka/securityProtocol'"),
        ({"config": {"LOG_LEVEL": "debug"}}, "'LOG_LEVEL' does not match pattern"),
        (
            {"gateway": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
            "gateway.autoscaling.minReplicas=5 is greater than maxReplicas=2",
        ),
        (
            {"persistence": {"replicas": 7}},
            "persistence.replicas=7 is more than kafka.partitions=6",
        ),
        (
            {"gateway": {"terminationGracePeriodSeconds": 12}},
            "gateway.terminationGracePeriodSeconds=12 is shorter than",
        ),
        (
            {"config": {"PARLEY_JWT_SECRET": "x" * 40}},
            "config.PARLEY_JWT_SECRET: a secret never goes into a ConfigMap",
        ),
        ({"metrics": {"port": 8000}}, "metrics.port must differ from gateway.port"),
        ({"webhooks": {"enabled": True}}, "webhooks.enabled needs the endpoints in a Secret"),
        (
            {"webhooks": {"env": {"PARLEY_WEBHOOKS": "a|https://x/|*|" + "s" * 20}}},
            "webhooks.env.PARLEY_WEBHOOKS: a secret never goes into a ConfigMap",
        ),
        (
            {"gateway": {"drain": {"shutdownMarginSeconds": 3}}},
            "at '/gateway/drain/shutdownMarginSeconds': minimum: got 3, want 10",
        ),
    ],
)
def test_wrong_values_are_refused_readably(helm, tmp_path, values, expected):
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump({"auth": {"jwtSecret": SECRET}, **values}))
    proc = run([helm, "template", "t", str(CHART), "-f", str(f)])
    assert proc.returncode != 0, f"accepted: {values}"
    assert expected in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({}, "A JWT secret is required: set secrets.existingSecret"),
        ({"jwtSecret": "short"}, "auth.jwtSecret is 5 bytes"),
        (
            {"jwtSecret": "parley-dev-secret-change-me-in-production"},
            "the old public development default",
        ),
        ({"algorithm": "RS256"}, "auth.algorithm=RS256 needs auth.jwtPublicKey"),
    ],
)
def test_a_jwt_secret_is_required(helm, tmp_path, auth, expected):
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump({"auth": auth}))
    proc = run([helm, "template", "t", str(CHART), "-f", str(f)])
    assert proc.returncode != 0 and expected in proc.stderr, proc.stderr


def test_existing_secret_renders_no_secret(helm):
    objs = docs(template(helm, "--set", "secrets.existingSecret=mine"))
    assert not [o for o in objs if o["kind"] == "Secret"]
    gw = find(objs, "Deployment", "-gateway")
    refs = [e.get("secretRef", {}).get("name") for e in container(gw)["envFrom"]]
    assert "mine" in refs
    job = find(objs, "Job", "-migrate")
    assert "mine" in [e.get("secretRef", {}).get("name") for e in container(job)["envFrom"]]


# --- what the templates promise -----------------------------------------------------------------


def test_gateway_drain_is_sized_from_the_drain_settings(helm):
    objs = docs(
        template(
            helm,
            "--set",
            f"auth.jwtSecret={SECRET},gateway.drain.seconds=20,gateway.drain.disconnectSeconds=7,"
            "gateway.drain.preStopSeconds=4,gateway.drain.shutdownMarginSeconds=11",
        )
    )
    gw = find(objs, "Deployment", "-gateway")
    spec = gw["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 4 + 20 + 7 + 11
    assert container(gw)["lifecycle"]["preStop"] == {"sleep": {"seconds": 4}}
    cm = find(objs, "ConfigMap", "t-parley")
    assert cm["data"]["PARLEY_DRAIN_SECONDS"] == "20"
    assert cm["data"]["PARLEY_DRAIN_DISCONNECT_SECONDS"] == "7"
    strategy = gw["spec"]["strategy"]["rollingUpdate"]
    assert strategy == {"maxSurge": 1, "maxUnavailable": 0}


def test_every_workload_has_three_probes_and_a_locked_down_pod(renders):
    for name in CI_SETS:
        objs = docs(renders[(name, "1.37")].read_text())
        for d in (o for o in objs if o["kind"] in ("Deployment", "StatefulSet")):
            pod = d["spec"]["template"]["spec"]
            c = pod["containers"][0]
            where = f"{name}/{d['metadata']['name']}"
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert probe in c, f"{where}: no {probe}"
            assert pod["automountServiceAccountToken"] is False, where
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], where
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
            if d["kind"] == "Deployment":  # Parley's own pods: read-only root, /tmp emptyDir
                assert c["securityContext"]["readOnlyRootFilesystem"] is True, where
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", where
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", where
                assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], where
                assert "checksum/config" in d["spec"]["template"]["metadata"]["annotations"]


def test_hpa_replaces_replicas_and_scales_down_slowly(renders):
    objs = docs(renders[("production", "1.37")].read_text())
    gw = find(objs, "Deployment", "-gateway")
    assert "replicas" not in gw["spec"]
    hpa = find(objs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == gw["metadata"]["name"]
    kinds = {m["type"] for m in hpa["spec"]["metrics"]}
    assert kinds == {"Resource", "Pods"}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    minimal = docs(renders[("minimal", "1.37")].read_text())
    assert find(minimal, "Deployment", "-gateway")["spec"]["replicas"] == 2
    assert not [o for o in minimal if o["kind"] == "HorizontalPodAutoscaler"]


def test_ingress_routes_clients_only_with_affinity_and_long_timeouts(helm):
    def ingress(*sets: str) -> dict:
        args = ["--set", f"auth.jwtSecret={SECRET},ingress.enabled=true", *sets]
        return find(docs(template(helm, *args)), "Ingress")

    ing = ingress()
    paths = [p["path"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]]
    assert paths == ["/socket.io", "/auth", "/files"]
    assert "/api" not in paths and "/metrics" not in paths
    ports = {
        p["backend"]["service"]["port"]["name"]
        for r in ing["spec"]["rules"]
        for p in r["http"]["paths"]
    }
    assert ports == {"http"}
    ann = ing["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert int(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(ann["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    with_api = ingress("--set", "ingress.routeApi=true")
    assert "/api" in [p["path"] for r in with_api["spec"]["rules"] for p in r["http"]["paths"]]


def test_metrics_port_is_named_scraped_and_not_on_the_client_service(renders):
    objs = docs(renders[("production", "1.37")].read_text())
    sm = find(objs, "ServiceMonitor")
    assert [e["port"] for e in sm["spec"]["endpoints"]] == ["metrics"]
    selected = sm["spec"]["selector"]["matchLabels"]
    metric_svcs = [
        o
        for o in objs
        if o["kind"] == "Service"
        and all(o["metadata"]["labels"].get(k) == v for k, v in selected.items())
    ]
    assert len(metric_svcs) == 4  # gateway, persistence, presence, webhooks (on here)
    for svc in metric_svcs:
        assert [p["name"] for p in svc["spec"]["ports"]] == ["metrics"]
    # The jobs the chart's alert rules (rules/, generated by deploy/grafana) select on.
    assert sm["spec"]["jobLabel"] == "parley.io/job"
    jobs = {svc["metadata"]["labels"]["parley.io/job"] for svc in metric_svcs}
    rules_text = "".join(p.read_text() for p in (CHART / "rules").glob("*.yaml"))
    wanted = set(re.findall(r'job=~?"([^"]+)"', rules_text))
    wanted = {j for w in wanted for j in w.split("|")}
    assert wanted <= jobs, f"rules expect jobs {wanted}, the ServiceMonitor gives {jobs}"
    gw_svc = find(objs, "Service", "-gateway")
    assert [p["name"] for p in gw_svc["spec"]["ports"]] == ["http"]
    assert gw_svc["spec"]["sessionAffinity"] == "ClientIP"
    cm = find(objs, "ConfigMap", "t-parley")
    assert cm["data"]["PARLEY_METRICS_PORT"] == "9090"
    ports = {
        p["name"]: p["containerPort"]
        for p in container(find(objs, "Deployment", "-gateway"))["ports"]
    }
    assert ports == {"http": 8000, "metrics": 9090}


def test_networkpolicy_limits_ingress_and_egress(renders):
    objs = docs(renders[("production", "1.37")].read_text())
    pols = {o["metadata"]["name"]: o for o in objs if o["kind"] == "NetworkPolicy"}
    assert set(pols) == {
        f"t-parley-{c}" for c in ("gateway", "persistence", "presence", "webhooks", "jobs")
    }
    gw = pols["t-parley-gateway"]["spec"]
    assert gw["policyTypes"] == ["Ingress", "Egress"]
    ingress_ports = [p["port"] for rule in gw["ingress"] for p in rule["ports"]]
    assert sorted(ingress_ports) == ["http", "http", "metrics"]
    egress_ports = sorted(p["port"] for rule in gw["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 6380, 9042, 9093]
    peers = [rule["from"][0] for rule in gw["ingress"]]
    assert peers[0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert peers[2]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    worker = pols["t-parley-persistence"]["spec"]["ingress"]
    assert [p["port"] for r in worker for p in r["ports"]] == ["metrics"], "scraper only"
    jobs = pols["t-parley-jobs"]["spec"]
    assert jobs["ingress"] == [] and jobs["policyTypes"] == ["Ingress", "Egress"]


def test_pdbs_and_spread(renders):
    objs = docs(renders[("minimal", "1.37")].read_text())
    pdbs = {o["metadata"]["name"] for o in objs if o["kind"] == "PodDisruptionBudget"}
    assert pdbs == {"t-parley-gateway", "t-parley-persistence", "t-parley-presence"}
    gw = find(objs, "Deployment", "-gateway")
    keys = [c["topologyKey"] for c in gw["spec"]["template"]["spec"]["topologySpreadConstraints"]]
    assert keys == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]


def test_selectors_carry_no_version(renders):
    objs = docs(renders[("production", "1.37")].read_text())
    for d in (o for o in objs if o["kind"] in ("Deployment", "StatefulSet")):
        sel = d["spec"]["selector"]["matchLabels"]
        assert set(sel) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }


def test_image_tag_defaults_to_app_version_and_digest_wins(helm, renders):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    objs = docs(renders[("minimal", "1.37")].read_text())
    assert container(find(objs, "Deployment", "-gateway"))["image"].endswith(
        ":" + chart["appVersion"]
    )
    prod = docs(renders[("production", "1.37")].read_text())
    assert "@sha256:" in container(find(prod, "Deployment", "-gateway"))["image"]


def test_dev_mode_deploys_engines_and_points_at_them(renders):
    objs = docs(renders[("dev-with-engines", "1.37")].read_text())
    sts = {o["metadata"]["name"] for o in objs if o["kind"] == "StatefulSet"}
    assert sts == {"t-parley-redis", "t-parley-kafka", "t-parley-cassandra"}
    for o in objs:
        if o["kind"] == "StatefulSet":
            assert o["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    cm = find(objs, "ConfigMap", "t-parley")["data"]
    assert cm["PARLEY_REDIS_URL"] == "redis://t-parley-redis:6379/0"
    assert cm["PARLEY_KAFKA_BOOTSTRAP"] == "t-parley-kafka:9092"
    assert cm["PARLEY_CASSANDRA_HOSTS"] == "t-parley-cassandra"
    job = find(objs, "Job", "-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    minimal = docs(renders[("minimal", "1.37")].read_text())
    assert find(minimal, "Job", "-migrate")["metadata"]["annotations"]["helm.sh/hook"] == (
        "pre-install,pre-upgrade"
    )
    assert not [o for o in minimal if o["kind"] == "StatefulSet"]


def test_migrate_hook_has_its_own_config_before_the_release_exists(renders):
    objs = docs(renders[("minimal", "1.37")].read_text())
    hooks = [o for o in objs if "helm.sh/hook" in o["metadata"].get("annotations", {})]
    by_kind = {(o["kind"], o["metadata"]["annotations"]["helm.sh/hook"]) for o in hooks}
    for kind in ("ServiceAccount", "ConfigMap", "Secret", "Job"):
        assert (kind, "pre-install,pre-upgrade") in by_kind
    job = find(objs, "Job", "-migrate")
    assert container(job)["command"] == ["python", "-m", "services.persistence.migrate"]
    refs = {next(iter(e.values()))["name"] for e in container(job)["envFrom"]}
    assert refs == {"t-parley-migrate"}
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "t-parley-migrate"


def test_dashboards_and_rules_render_only_when_present(helm, tmp_path):
    """The folders may be empty or absent (generated by another tool): nothing renders then;
    with files, one dashboards ConfigMap and one PrometheusRule with their content."""
    chart = tmp_path / "parley"
    shutil.copytree(CHART, chart)
    for d in ("dashboards", "rules"):
        shutil.rmtree(chart / d, ignore_errors=True)
    sets = f"auth.jwtSecret={SECRET},grafanaDashboards.enabled=true,prometheusRule.enabled=true"
    objs = docs(ok([helm, "template", "t", str(chart), "--set", sets]))
    assert not [o for o in objs if o["kind"] == "PrometheusRule"]
    assert not [o for o in objs if o["metadata"]["name"].endswith("-dashboards")]
    (chart / "dashboards").mkdir()
    (chart / "dashboards" / "parley.json").write_text('{"title": "Parley"}')
    (chart / "rules").mkdir()
    (chart / "rules" / "a.yaml").write_text(
        "groups:\n- name: parley\n  rules:\n  - alert: X\n    expr: up == 0\n"
    )
    objs = docs(ok([helm, "template", "t", str(chart), "--set", sets]))
    rule = find(objs, "PrometheusRule")
    assert rule["spec"]["groups"][0]["rules"][0]["alert"] == "X"
    cm = find(objs, "ConfigMap", "-dashboards")
    assert json.loads(cm["data"]["parley.json"]) == {"title": "Parley"}
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_notes_tell_how_to_reach_the_gateway_and_get_a_token(helm, tmp_path):
    out = ok(
        [helm, "install", "t", str(CHART), "--dry-run=client", "--set", f"auth.jwtSecret={SECRET}"]
    )
    assert "port-forward svc/t-parley-gateway" in out
    assert "PARLEY_JWT_SECRET" in out and "helm test t" in out


def test_chart_readme_is_generated_from_values():
    proc = run([sys.executable, str(REPO / "deploy/tools/chart-readme.py"), "--check"])
    assert proc.returncode == 0, proc.stderr


def test_values_schema_is_generated_from_its_source():
    proc = run([sys.executable, str(REPO / "deploy/tools/gen-values-schema.py"), "--check"])
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", CI_SETS)
def test_rendered_env_is_accepted_by_the_services(renders, name):
    """The env each Parley container gets (ConfigMap + Secret + its own env) names only real
    settings and passes Settings.from_env, the check every service runs at start."""
    import base64
    import dataclasses

    from services.common.settings import Settings

    known = {f"PARLEY_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    objs = docs(renders[(name, "1.37")].read_text())
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in objs if o["kind"] == "ConfigMap"}
    secrets = {
        o["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in o["data"].items()}
        for o in objs
        if o["kind"] == "Secret"
    }
    checked = 0
    for o in objs:
        spec = o.get("spec", {}).get("template", {}).get("spec") or (
            o["spec"] if o["kind"] == "Pod" else None
        )
        for c in (spec or {}).get("containers", []):
            if (
                not c["image"].startswith("registry.example.com/")
                and "example/parley" not in c["image"]
            ):
                continue  # dev engines
            env: dict[str, str] = {}
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    env.update(maps[src["configMapRef"]["name"]])
                else:
                    ref = src["secretRef"]["name"]
                    env.update(
                        secrets.get(ref)
                        or {  # an existingSecret: what its owner must put in it
                            "PARLEY_JWT_SECRET": "s" * 48,
                            "PARLEY_REDIS_PASSWORD": "r",
                            "PARLEY_KAFKA_PASSWORD": "k",
                            "PARLEY_CASSANDRA_PASSWORD": "c",
                        }
                    )
            env.update({e["name"]: e.get("value", "pod-x") for e in c.get("env", [])})
            if "secretKeyRef" in str(c.get("env")):  # the webhook endpoints' own Secret
                env["PARLEY_WEBHOOKS"] = "crm|https://crm.example.com/hook|*|" + "w" * 24
            unknown = {k for k in env if k.startswith("PARLEY_")} - known
            assert not unknown, f"{name}/{o['metadata']['name']}: unknown settings {unknown}"
            settings = Settings.from_env(env)
            assert settings.mode == "cluster" and settings.host == "0.0.0.0"
            assert settings.metrics_port == 9090 and settings.port == 8000
            assert (settings.drain_seconds, settings.drain_disconnect_seconds) == (10, 5)
            checked += 1
    assert checked >= 5


def test_the_webhook_worker_is_off_by_default_and_gets_its_endpoints_from_a_secret(helm, renders):
    for name in ("minimal", "dev-with-engines"):
        objs = docs(renders[(name, "1.37")].read_text())
        assert not [o for o in objs if "webhooks" in o["metadata"]["name"]], name
    objs = docs(renders[("production", "1.37")].read_text())
    worker = find(objs, "Deployment", "-webhooks")
    assert worker["spec"]["replicas"] == 2
    c = container(worker)
    assert c["command"] == ["python", "-m", "services.webhooks"]
    endpoints = next(e for e in c["env"] if e["name"] == "PARLEY_WEBHOOKS")
    assert endpoints["valueFrom"]["secretKeyRef"] == {
        "name": "parley-webhooks",
        "key": "PARLEY_WEBHOOKS",
    }
    gw = container(find(objs, "Deployment", "-gateway"))  # the gateways never see them
    assert "PARLEY_WEBHOOKS" not in str(gw.get("env"))
    assert find(objs, "PodDisruptionBudget", "-webhooks")["spec"]["maxUnavailable"] == 1
    metrics = find(objs, "Service", "-webhooks-metrics")
    assert metrics["metadata"]["labels"]["parley.io/job"] == "parley-webhooks"
    policy = find(objs, "NetworkPolicy", "-webhooks")["spec"]
    assert [p["port"] for r in policy["ingress"] for p in r["ports"]] == ["metrics"]
    assert {"ipBlock": {"cidr": "203.0.113.0/24"}} in policy["egress"][-1]["to"]
    # without a Secret of its own, PARLEY_WEBHOOKS comes from secrets.existingSecret
    shared = docs(template(helm, "--set", "secrets.existingSecret=mine,webhooks.enabled=true"))
    c = container(find(shared, "Deployment", "-webhooks"))
    assert "PARLEY_WEBHOOKS" not in str(c["env"])
    assert "mine" in [e.get("secretRef", {}).get("name") for e in c["envFrom"]]
    out = ok(
        [helm, "install", "t", str(CHART), "--dry-run=client", "--set",
         "secrets.existingSecret=mine,webhooks.enabled=true"]
    )  # fmt: skip
    assert "webhook worker (1)" in out and "Webhooks: endpoints from PARLEY_WEBHOOKS" in out
