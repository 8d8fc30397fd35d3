"""The charts with the real `helm`: lint, strict values schemas, capability gating, and
`helm install` + `helm test` of the umbrella and operator charts into the control plane.

kwok runs no containers: Deployments go Ready, and a `helm test` Pod is completed by the kwok
stage hack/controlplane.py adds for Pods annotated `helm.sh/hook: test`. So `helm test` here proves
the hooks are admitted (schema, RBAC, Pod Security "restricted") and wired; the HTTP checks they
run inside their containers are exercised where real containers run (the images tier). kwok's
nodes are tainted, so the installs here ask for them through the charts' scheduling values.

Rendering checks (`helm template`) cover what kwok cannot show: scheduling, graceful stop, PDB
policy, the dev reload mode, the secret names, and the production profile (server-side dry run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from clusterlib import KWOK_SCHEDULING, Run, kwok_values, restricted_namespace, wait_for

from gameplane_operator.values import Defaults, chart_values

CHARTS = ("gameplane-service", "gameplane", "gameplane-operator")
REPO = Path(__file__).resolve().parents[2]
# what a default platform runs
BUILT = ["gateway", "players", "wallet", "games", "sessions", "payments", "bonus", "risk", "affiliates", "analytics",
         "web", "backoffice"]
PROM = [
    *("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"),
    *("--api-versions", "monitoring.coreos.com/v1/PrometheusRule"),
    *("--api-versions", "monitoring.coreos.com/v1"),
]


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_lints_clean(helm: Run, chart: str) -> None:
    out = helm("lint", "--strict", f"charts/{chart}").stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


@pytest.mark.parametrize(
    ("chart", "setting", "message"),
    [
        ("gameplane", "wallet.replicas=two", "/wallet/replicas"),
        ("gameplane", "casino=true", "casino"),
        ("gameplane", "global.size=huge", "/global/size"),
        ("gameplane", "wallet.scheduling.nodeSelektor.pool=a", "nodeSelektor"),
        ("gameplane", "global.scheduling.tolerations[0].operator=Maybe", "/global/scheduling/tolerations/0/operator"),
        ("gameplane-service", "name=poker", "/name"),
        ("gameplane-service", "module=gameplane.wallet", "module"),  # the launcher finds modules now
        ("gameplane-service", "lifecycle.preStopSleepSeconds=-1", "/lifecycle/preStopSleepSeconds"),
        ("gameplane-operator", "workers=0", "/workers"),
        ("gameplane-operator", "image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("gameplane-operator", "platformDefaults.redisImage=x", "redisImage"),
    ],
)
def test_values_schema_is_strict(helm: Run, chart: str, setting: str, message: str) -> None:
    out = helm("template", "x", f"charts/{chart}", "--set", setting, check=False)
    assert out.returncode != 0
    assert "values don't meet the specifications of the schema" in out.stderr and message in out.stderr, out.stderr


def test_monitoring_objects_follow_the_prometheus_operator_api(helm: Run) -> None:
    without = docs(helm("template", "p", "charts/gameplane").stdout)
    assert not [d for d in without if d["kind"] in ("ServiceMonitor", "PrometheusRule")]
    wallet = next(d for d in without if d["kind"] == "Deployment" and d["metadata"]["name"] == "p-wallet")
    assert wallet["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"

    with_prom = docs(helm("template", "p", "charts/gameplane", *PROM,
                          "--set", "global.monitoring.labels.release=kube-prometheus-stack").stdout)  # fmt: skip
    monitors = [d for d in with_prom if d["kind"] == "ServiceMonitor"]
    rules = {d["metadata"]["name"]: d for d in with_prom if d["kind"] == "PrometheusRule"}
    assert len(monitors) == len(BUILT) and len(rules) == len(BUILT)
    assert all(m["metadata"]["labels"]["release"] == "kube-prometheus-stack" for m in monitors)
    # the services' own `service` label wins over the Operator's (the Kubernetes Service, p-<name>),
    # and the target (hence `up`) is named the same: what the rules and dashboards select by
    for m in monitors:
        (endpoint,) = m["spec"]["endpoints"]
        name = m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        assert endpoint["honorLabels"] is True
        assert endpoint["relabelings"] == [{"targetLabel": "service", "replacement": name}]
    exprs = [r["expr"] for g in rules["p-wallet"]["spec"]["groups"] for r in g["rules"]]
    assert any('gameplane_http_requests_total{service="wallet",status=~"5.."}' in e for e in exprs)
    dashboards = [d for d in with_prom if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard")]
    assert {d["metadata"]["name"] for d in dashboards} == {"p-dashboard-gameplane-red", "p-dashboard-gameplane-events",
                                                          "p-dashboard-gameplane-risk", "p-dashboard-gameplane-bonus",
                                                          "p-dashboard-gameplane-affiliates",
                                                          "p-dashboard-gameplane-business",
                                                          "p-dashboard-gameplane-overview",
                                                          "p-dashboard-gameplane-wallet",
                                                          "p-dashboard-gameplane-providers-payments",
                                                          "p-dashboard-gameplane-slo",
                                                          "p-dashboard-gameplane-operator"}
    for d in dashboards:
        (payload,) = d["data"].values()
        assert json.loads(payload)["panels"]


def test_pdb_respects_the_autoscaler_minimum(helm: Run) -> None:
    out = docs(helm("template", "p", "charts/gameplane-service", "--set", "name=games",
                    "--set", "autoscaling.enabled=true", "--set", "autoscaling.minReplicas=3").stdout)  # fmt: skip
    pdb = next(d for d in out if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 2
    deploy = next(d for d in out if d["kind"] == "Deployment")
    assert "replicas" not in deploy["spec"]  # the HPA owns the count


def test_umbrella_chart_installs_and_its_tests_pass(helm: Run, kubectl: Run, crd: None) -> None:
    ns = "helm-umbrella"
    restricted_namespace(kubectl, ns)
    # kwok Pods mount nothing, and this cluster has no provisioner: NATS' volume would wait for ever.
    kwok = [*kwok_values("global.scheduling"), "--set", "nats.storageSize="]
    out = helm("install", "casino", "charts/gameplane", "-n", ns, *kwok, "--wait", "--timeout", "180s").stdout
    assert "Discovery map: ConfigMap casino-endpoints" in out  # NOTES.txt
    def all_ready() -> bool:
        deploys = json.loads(kubectl("get", "deploy", "-n", ns, "-o", "json").stdout)["items"]
        # the services' Deployments (NATS and PostgreSQL are StatefulSets)
        return len(deploys) == len(BUILT) and all(d["status"].get("readyReplicas") == 1 for d in deploys)

    wait_for(f"{len(BUILT)} Deployments ready", all_ready, 60)
    tested = helm("test", "casino", "-n", ns, "--timeout", "180s").stdout
    suites = {line.split()[-1] for line in tested.splitlines() if line.startswith("TEST SUITE:")}
    phases = {line.split()[-1] for line in tested.splitlines() if line.startswith("Phase:")}
    assert suites == {f"casino-{s}-test" for s in BUILT} | {"casino-discovery-test"}, tested
    assert phases == {"Succeeded"}, tested
    # Re-running `helm upgrade` keeps the generated keys (lookup), so no Pod restarts for nothing.
    kept = ["casino-secrets", *(f"casino-{s}-identity" for s in BUILT)]
    before = [kubectl("get", "secret", s, "-n", ns, "-o", "jsonpath={.data}").stdout for s in kept]
    assert all(b.strip() not in ("", "{}") for b in before)
    keys = kubectl("get", "configmap", "casino-public-keys", "-n", ns, "-o", "jsonpath={.data}").stdout
    helm("upgrade", "casino", "charts/gameplane", "-n", ns, *kwok, "--wait", "--timeout", "180s")
    assert [kubectl("get", "secret", s, "-n", ns, "-o", "jsonpath={.data}").stdout for s in kept] == before
    assert kubectl("get", "configmap", "casino-public-keys", "-n", ns, "-o", "jsonpath={.data}").stdout == keys
    helm("uninstall", "casino", "-n", ns, "--wait")


def test_operator_chart_installs_and_its_test_passes(helm: Run, kubectl: Run, crd: None) -> None:
    ns = "helm-operator"
    restricted_namespace(kubectl, ns)
    out = helm("install", "gpo", "charts/gameplane-operator", "-n", ns, *kwok_values(""),
               "--wait", "--timeout", "120s").stdout  # fmt: skip
    assert "kubectl -n casino get gp -w" in out  # NOTES.txt
    role = json.loads(kubectl("get", "clusterrole", "gpo-gameplane-operator", "-o", "json").stdout)
    for rule in role["rules"]:  # least privilege: never a wildcard
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    dep = json.loads(kubectl("get", "deploy", "gpo-gameplane-operator", "-n", ns, "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    assert dep["status"]["readyReplicas"] == 1
    tested = helm("test", "gpo", "-n", ns, "--timeout", "120s").stdout
    assert "Phase:          Succeeded" in tested, tested
    helm("uninstall", "gpo", "-n", ns, "--wait")


def _render(helm: Run, chart: str, *args: str) -> list[dict[str, Any]]:
    return docs(helm("template", "p", f"charts/{chart}", *args).stdout)


def _pod_spec(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    obj = next(d for d in rendered if d["kind"] == kind and d["metadata"]["name"] == name)
    return obj["spec"] if kind == "Pod" else obj["spec"]["template"]["spec"]


def test_service_container_runs_the_image_launcher_with_the_service_name(helm: Run) -> None:
    rendered = _render(helm, "gameplane", "--set", "rgs.enabled=true")
    for name in [*BUILT, "rgs"]:
        (container,) = _pod_spec(rendered, "Deployment", f"p-{name}")["containers"]
        # The image's ENTRYPOINT is `python -m gameplane`: no command, the service by name.
        assert "command" not in container and container["args"] == [name]


def test_scheduling_settings_render_globally_and_per_service(helm: Run) -> None:
    spread_off = ["--set", "sessions.replicas=3", "--set", "sessions.scheduling.topologySpread=false"]
    rendered = _render(helm, "gameplane", *kwok_values("global.scheduling"),
                       "--set", "global.scheduling.priorityClassName=casino-high",
                       "--set", "wallet.replicas=2", "--set", "games.autoscaling.enabled=true",
                       "--set-json", 'players.scheduling={"nodeSelector": {"pool": "accounts"}, "tolerations": []}',
                       *spread_off)  # fmt: skip
    specs = {n: _pod_spec(rendered, "Deployment", f"p-{n}") for n in BUILT}
    for name in ("gateway", "wallet", "games", "sessions"):
        assert specs[name]["nodeSelector"] == KWOK_SCHEDULING["nodeSelector"]
        assert specs[name]["tolerations"] == KWOK_SCHEDULING["tolerations"]
        assert specs[name]["priorityClassName"] == "casino-high"
    # A key a service sets replaces the global one, even when empty; others are inherited.
    assert specs["players"]["nodeSelector"] == {"pool": "accounts"} and "tolerations" not in specs["players"]
    assert specs["players"]["priorityClassName"] == "casino-high"
    # The default spread: only for more than one replica or an HPA, and never as a hard rule.
    for name in ("wallet", "games"):
        tsc = specs[name]["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in tsc] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        assert {c["whenUnsatisfiable"] for c in tsc} == {"ScheduleAnyway"}
        assert all(c["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == name for c in tsc)
    assert "topologySpreadConstraints" not in specs["gateway"]  # one replica
    assert "topologySpreadConstraints" not in specs["sessions"]  # three replicas, but turned off
    # The development backends and the test Pods follow the platform's placement too.
    for kind, name in (("StatefulSet", "p-postgres"), ("StatefulSet", "p-nats")):
        assert _pod_spec(rendered, kind, name)["tolerations"] == KWOK_SCHEDULING["tolerations"]
    assert _pod_spec(rendered, "Pod", "p-wallet-test")["nodeSelector"] == KWOK_SCHEDULING["nodeSelector"]
    assert _pod_spec(rendered, "Pod", "p-discovery-test")["nodeSelector"] == KWOK_SCHEDULING["nodeSelector"]
    # Explicit constraints replace the default spread; labelSelector is filled in.
    explicit = [{"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}]
    rendered = _render(helm, "gameplane", "--set", "wallet.replicas=2",
                       "--set-json", f"wallet.scheduling.topologySpreadConstraints={json.dumps(explicit)}")  # fmt: skip
    (tsc,) = _pod_spec(rendered, "Deployment", "p-wallet")["topologySpreadConstraints"]
    assert tsc["maxSkew"] == 2 and tsc["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == "wallet"
    # The operator chart.
    operator = _render(helm, "gameplane-operator", *kwok_values(""), "--set", "priorityClassName=ops")
    spec = _pod_spec(operator, "Deployment", "p-gameplane-operator")
    assert spec["nodeSelector"] == {"type": "kwok"} and spec["priorityClassName"] == "ops"
    assert _pod_spec(operator, "Pod", "p-gameplane-operator-test")["tolerations"] == KWOK_SCHEDULING["tolerations"]


def test_pdb_lets_a_drain_evict_pods_that_are_not_ready(helm: Run) -> None:
    for args in ([], ["--set", "replicas=3"]):
        pdb = next(d for d in _render(helm, "gameplane-service", *args) if d["kind"] == "PodDisruptionBudget")
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_graceful_stop_sleeps_before_sigterm_within_the_grace_period(helm: Run) -> None:
    spec = _pod_spec(_render(helm, "gameplane-service", "--set", "name=gateway"), "Deployment", "p-gateway")
    (container,) = spec["containers"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}  # no binary needed in the image
    assert spec["terminationGracePeriodSeconds"] == 30
    off = _pod_spec(_render(helm, "gameplane-service", "--set", "lifecycle.preStopSleepSeconds=0"), "Deployment",
                    "p-wallet")  # fmt: skip
    assert "lifecycle" not in off["containers"][0]
    # A grace period that leaves the server no time to drain after the sleep is refused.
    bad = helm("template", "p", "charts/gameplane-service", "--set", "lifecycle.preStopSleepSeconds=28", check=False)
    assert bad.returncode != 0 and "must be at least preStopSleepSeconds (28) + 5" in bad.stderr, bad.stderr


def test_each_service_mounts_only_its_own_key(helm: Run) -> None:
    rendered = _render(helm, "gameplane", "--set", "rgs.enabled=true")
    identities = {d["metadata"]["name"] for d in rendered if d["kind"] == "Secret"
                  and d["metadata"]["name"].endswith("-identity")}
    assert identities == {f"p-{s}-identity" for s in BUILT}
    for dep in (d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"] != "p-nats"):
        service = dep["metadata"]["name"].removeprefix("p-")
        mounted = {v["secret"]["secretName"] for v in dep["spec"]["template"]["spec"]["volumes"] if "secret" in v}
        mounted = {m for m in mounted if m.endswith("-identity")}
        assert mounted == ({f"p-{service}-identity"} if service != "rgs" else set()), service


def test_operator_key_pairs_render_as_given_and_deterministically(helm: Run, tmp_path: Path) -> None:
    from gameplane_operator.identities import new_pair

    pairs = {s: new_pair() for s in BUILT}
    values = chart_values("p", {"version": "0.1.0"}, {"postgres-password": "pw"}, Defaults(), pairs,
                          {"backoffice": [new_pair()["publicKey"]]})
    path = tmp_path / "values.json"
    path.write_text(json.dumps(values))
    first, second = (helm("template", "p", "charts/gameplane", "--values", str(path), "--skip-tests").stdout
                     for _ in range(2))
    assert first == second  # a re-render (every reconcile) never rotates a key
    rendered = docs(first)
    wallet = next(d for d in rendered if d["kind"] == "Secret" and d["metadata"]["name"] == "p-wallet-identity")
    assert wallet["stringData"]["key.pem"] == pairs["wallet"]["privateKey"]
    keys_map = next(d for d in rendered if d["metadata"]["name"] == "p-public-keys")
    public = json.loads(keys_map["data"]["public-keys.json"])
    assert set(public) == {*pairs, "backoffice"} and public["wallet"] == [pairs["wallet"]["publicKey"]]


def test_dev_postgres_reads_the_configured_secret(helm: Run) -> None:
    rendered = _render(helm, "gameplane", "--set", "global.secretsName=casino-keys")
    (pg,) = _pod_spec(rendered, "StatefulSet", "p-postgres")["containers"]
    password = next(e for e in pg["env"] if e["name"] == "POSTGRES_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"] == {"name": "casino-keys", "key": "postgres-password"}
    # the platform Secret the chart creates is the one everything reads (beside each service's own key)
    secrets = [d["metadata"]["name"] for d in rendered if d["kind"] == "Secret"
               and not d["metadata"]["name"].endswith("-identity")]
    assert secrets == ["casino-keys"]
    (wallet,) = _pod_spec(rendered, "Deployment", "p-wallet")["containers"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in wallet["env"] if "valueFrom" in e}
    assert refs == {"casino-keys"}
    # Negative control: without the setting, the release's default name.
    default = _render(helm, "gameplane")
    (pg,) = _pod_spec(default, "StatefulSet", "p-postgres")["containers"]
    assert next(e for e in pg["env"] if e["name"] == "POSTGRES_PASSWORD")["valueFrom"]["secretKeyRef"]["name"] == (
        "p-secrets")  # fmt: skip


def test_dev_reload_runs_a_copy_of_the_sources_on_a_read_only_root(helm: Run) -> None:
    off = _pod_spec(_render(helm, "gameplane"), "Deployment", "p-games")
    assert "initContainers" not in off and off["containers"][0]["args"] == ["games"]
    on = _pod_spec(_render(helm, "gameplane", "--set", "global.dev.reload=true"), "Deployment", "p-games")
    (init,) = on["initContainers"]
    (container,) = on["containers"]
    assert init["image"] == container["image"] == "gameplane/gameplane:0.1.0"
    assert "/app/src/gameplane" in init["command"][-1]
    assert container["args"] == ["--reload", "/app/src/gameplane", "games"]
    assert {"name": "PYTHONPATH", "value": "/app/src"} in container["env"]
    for c in (init, container):
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "src", "mountPath": "/app/src"} in c["volumeMounts"]
    assert {"name": "src", "emptyDir": {"sizeLimit": "256Mi"}} in on["volumes"]
    # Per service too.
    one = _render(helm, "gameplane", "--set", "wallet.dev.reload=true")
    assert "initContainers" in _pod_spec(one, "Deployment", "p-wallet")
    assert "initContainers" not in _pod_spec(one, "Deployment", "p-players")


def test_production_profile_renders_and_the_api_server_accepts_it(helm: Run, kubectl: Run, crd: None) -> None:
    ns = "helm-production"
    restricted_namespace(kubectl, ns)
    text = helm("template", "casino", "charts/gameplane", "-n", ns, "-f", "charts/gameplane/values-production.yaml",
                "--skip-tests").stdout  # fmt: skip
    rendered = docs(text)
    deploys = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Deployment"}
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d for d in rendered if d["kind"] == "HorizontalPodAutoscaler"}
    assert set(deploys) == {f"casino-{s}" for s in BUILT}  # no development PostgreSQL or NATS
    assert not [d for d in rendered if d["kind"] == "StatefulSet"]
    for name, dep in deploys.items():
        minimum = hpas[name]["spec"]["minReplicas"] if name in hpas else dep["spec"]["replicas"]
        assert minimum >= 2, name
        spec = dep["spec"]["template"]["spec"]
        assert len(spec["topologySpreadConstraints"]) == 2, name
        assert spec["containers"][0]["resources"]["requests"], name
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        if "GP_DATABASE_SERVER_URL" in env:
            assert env["GP_DATABASE_SERVER_URL"]["valueFrom"]["secretKeyRef"]["name"] == "casino-db"
    out = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=text)
    assert out.stdout.count("(server dry run)") == len(rendered), out.stdout


def test_operator_values_for_the_full_sample_render(helm: Run, tmp_path: Path) -> None:
    """The operator's values (values.py) against the real chart: every CRD field it maps is accepted
    by the umbrella's strict schema and lands where it should."""
    full = yaml.safe_load((REPO / "k8s" / "samples" / "full.yaml").read_text())
    spec = full["spec"]
    spec["services"].append({"name": "players", "scheduling": {"nodeSelector": {}, "topologySpread": False}})
    keys = {"postgres-password": "pw"}
    values = chart_values("casino", spec, keys, Defaults(postgres_image="gameplane/dev-postgres:17",
                                                         nats_image="gameplane/dev-nats:2.11"))  # fmt: skip
    path = tmp_path / "values.json"
    path.write_text(json.dumps(values))
    rendered = docs(helm("template", "casino", "charts/gameplane", "--values", str(path), "--skip-tests").stdout)
    specs = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in rendered if d["kind"] == "Deployment"}
    assert specs["casino-wallet"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert specs["casino-wallet"]["affinity"] == spec["scheduling"]["affinity"]
    assert specs["casino-wallet"]["tolerations"] == spec["scheduling"]["tolerations"]
    assert len(specs["casino-wallet"]["topologySpreadConstraints"]) == 2  # 3 replicas
    assert len(specs["casino-sessions"]["tolerations"]) == 2  # its own list replaces the platform's
    assert "nodeSelector" not in specs["casino-players"]
    # The embedded NATS image the sample names wins over the operator default; no PostgreSQL
    # (the sample's database is external).
    statefulsets = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in rendered
                    if d["kind"] == "StatefulSet"}  # fmt: skip
    assert set(statefulsets) == {"casino-nats"}
    assert statefulsets["casino-nats"]["containers"][0]["image"] == "nats:2.11-alpine"
    assert "casino-backoffice" not in specs  # listed as disabled
    assert "casino-web" in specs
    assert "casino-payments" in specs  # built: runs unless the spec turns it off
