"""The charts with the real `helm`: lint, strict values schemas, capability gating, and
`helm install` + `helm test` of the umbrella and operator charts into the control plane.

kwok runs no containers: Deployments go Ready, and a `helm test` Pod is completed by the kwok
stage hack/controlplane.py adds for Pods annotated `helm.sh/hook: test`. So `helm test` here proves
the hooks are admitted (schema, RBAC, Pod Security "restricted") and wired; the HTTP checks they
run inside their containers are exercised where real containers run (the images tier).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from clusterlib import Run, restricted_namespace, wait_for

CHARTS = ("gameplane-service", "gameplane", "gameplane-operator")
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
        ("gameplane-service", "name=poker", "/name"),
        ("gameplane-operator", "workers=0", "/workers"),
        ("gameplane-operator", "image.pullPolicy=Sometimes", "/image/pullPolicy"),
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
    assert len(monitors) == 10 and len(rules) == 10
    assert all(m["metadata"]["labels"]["release"] == "kube-prometheus-stack" for m in monitors)
    exprs = [r["expr"] for g in rules["p-wallet"]["spec"]["groups"] for r in g["rules"]]
    assert any('gameplane_http_requests_total{service="wallet",status=~"5.."}' in e for e in exprs)
    dashboards = [d for d in with_prom if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard")]
    assert {d["metadata"]["name"] for d in dashboards} == {"p-dashboard-gameplane-red", "p-dashboard-gameplane-events"}
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
    out = helm("install", "casino", "charts/gameplane", "-n", ns, "--wait", "--timeout", "180s").stdout
    assert "Discovery map: ConfigMap casino-endpoints" in out  # NOTES.txt
    def all_ready() -> bool:
        deploys = json.loads(kubectl("get", "deploy", "-n", ns, "-o", "json").stdout)["items"]
        return len(deploys) == 11 and all(d["status"].get("readyReplicas") == 1 for d in deploys)

    wait_for("11 Deployments ready", all_ready, 60)
    tested = helm("test", "casino", "-n", ns, "--timeout", "180s").stdout
    suites = {line.split()[-1] for line in tested.splitlines() if line.startswith("TEST SUITE:")}
    phases = {line.split()[-1] for line in tested.splitlines() if line.startswith("Phase:")}
    services = "gateway players wallet games sessions payments bonus risk affiliates analytics".split()
    assert suites == {f"casino-{s}-test" for s in services} | {"casino-discovery-test"}, tested
    assert phases == {"Succeeded"}, tested
    # Re-running `helm upgrade` keeps the generated keys (lookup), so no Pod restarts for nothing.
    before = kubectl("get", "secret", "casino-secrets", "-n", ns, "-o", "jsonpath={.data}").stdout
    helm("upgrade", "casino", "charts/gameplane", "-n", ns, "--wait", "--timeout", "180s")
    assert kubectl("get", "secret", "casino-secrets", "-n", ns, "-o", "jsonpath={.data}").stdout == before
    helm("uninstall", "casino", "-n", ns, "--wait")


def test_operator_chart_installs_and_its_test_passes(helm: Run, kubectl: Run, crd: None) -> None:
    ns = "helm-operator"
    restricted_namespace(kubectl, ns)
    out = helm("install", "gpo", "charts/gameplane-operator", "-n", ns, "--wait", "--timeout", "120s").stdout
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
