"""The operator's alerts reach a Prometheus the way its chart ships them: a PrometheusRule with
exactly observability/prometheus/rules/operator-rules.yaml (only when the Prometheus Operator is
there and it is asked for), a ServiceMonitor that labels the target as the rules select it, and
every operator metric a rule uses exported by the operator's code. Rendered by the real `helm`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from tests.unit.test_network_policy import helm_template

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "observability" / "prometheus" / "rules" / "operator-rules.yaml"
OPERATOR_CODE = REPO / "operator" / "gameplane_operator"
CHART = "charts/gameplane-operator"
PROM_RULE = ("--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
SERVICE_MONITOR = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_the_chart_ships_the_operator_rules_as_a_prometheus_rule() -> None:
    docs = helm_template(*PROM_RULE, "--set", "monitoring.labels.release=kube-prometheus-stack", chart=CHART)
    (rule,) = of_kind(docs, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"GameplaneOperatorDown", "GameplaneOperatorReconcileFailures",
                      "GameplaneOperatorPlatformNotReady", "GameplaneOperatorReconcileSlow",
                      "GameplaneCertificateExpiringSoon"}
    # Prometheus' templates pass through helm untouched (the file is data, not a template).
    annotations = [r["annotations"]["summary"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert any("{{ $labels.stage }}" in a for a in annotations)


def test_no_prometheus_rule_without_the_api_or_when_turned_off() -> None:
    assert of_kind(helm_template(chart=CHART), "PrometheusRule") == []
    off = helm_template(*PROM_RULE, "--set", "monitoring.prometheusRule=false", chart=CHART)
    assert of_kind(off, "PrometheusRule") == []


def test_the_operator_alerts_are_the_operator_charts_alone() -> None:
    docs = helm_template(*PROM_RULE, *SERVICE_MONITOR)  # the umbrella chart: every service's rules
    names = {r.get("alert") for d in of_kind(docs, "PrometheusRule") for g in d["spec"]["groups"] for r in g["rules"]}
    assert "GameplaneServiceDown" in names  # negative control: the services' rules are there
    assert not any(str(n).startswith(("GameplaneOperator", "GameplaneCertificate")) for n in names)


def test_the_service_monitor_labels_the_target_as_the_rules_select_up() -> None:
    (monitor,) = of_kind(helm_template(*SERVICE_MONITOR, chart=CHART), "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    (relabel,) = [r for r in endpoint["relabelings"] if r["targetLabel"] == "service"]
    selected = set(re.findall(r'up\{service="([^"]+)"\}', RULES.read_text()))
    assert selected == {relabel["replacement"]} == {"gameplane-operator"}


def unexported(rules: str, code: str) -> set[str]:
    """Operator metric families `rules` use that no string literal in `code` names."""
    used = set(re.findall(r"\b(gameplane_operator_[a-z_]+)", rules))
    families = {re.sub(r"_(bucket|count|sum)$", "", m) for m in used}
    return {f for f in families if f'"{f}"' not in code}


def test_every_operator_metric_a_rule_uses_is_exported_by_the_operator() -> None:
    code = "\n".join(p.read_text() for p in OPERATOR_CODE.glob("*.py"))
    rules = RULES.read_text()
    assert len(set(re.findall(r"\bgameplane_operator_[a-z_]+", rules))) >= 4
    assert unexported(rules, code) == set()
    # negative control: a rule on a metric the operator does not export is reported
    assert unexported(rules + "\nexpr: rate(gameplane_operator_reconcile_lag_seconds_sum[5m])", code) == {
        "gameplane_operator_reconcile_lag_seconds"}
