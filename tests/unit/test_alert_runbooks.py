"""Every alert has its runbook: each rule in observability/prometheus/rules/ links a page that
exists in docs/runbooks/ and is listed in its index; a service's own rule file reaches that
service's PrometheusRule (and only that service's)."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.unit.test_network_policy import helm_template

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "observability" / "prometheus" / "rules"
RUNBOOKS = REPO / "docs" / "runbooks"
PREFIX = "https://github.com/gameplane/gameplane/blob/main/docs/runbooks/"


def alerts() -> dict[str, str]:
    """alert name -> runbook file name, over every rule file."""
    out = {}
    for path in sorted(RULES.glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    url = rule["annotations"]["runbook_url"]
                    assert url.startswith(PREFIX), (rule["alert"], url)
                    out[rule["alert"]] = url.removeprefix(PREFIX)
    return out


def test_every_alert_links_a_runbook_that_exists_and_is_indexed() -> None:
    found = alerts()
    assert {"GameplaneHighErrorRate", "GameplaneRiskReviewBacklog", "GameplaneRiskSlowDecisions"} <= set(found)
    index = (RUNBOOKS / "README.md").read_text()
    for alert, page in found.items():
        assert (RUNBOOKS / page).is_file(), (alert, page)
        assert f"| {alert} | [{page}]({page}) |" in index, alert
        assert (RUNBOOKS / page).read_text().startswith(f"# {alert}\n"), page


def rule_alerts(service: str) -> list[str]:
    """The alerts of the PrometheusRule the service chart renders for `service`."""
    docs = helm_template("--set", f"name={service}", "--set", "global.monitoring.prometheusRule=true",
                         "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
                         chart="charts/gameplane-service")
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    return [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]


def test_risk_alerts_reach_risks_prometheus_rule_only() -> None:
    risk, wallet = rule_alerts("risk"), rule_alerts("wallet")
    assert {"GameplaneRiskReviewBacklog", "GameplaneRiskSlowDecisions", "GameplaneHighErrorRate"} <= set(risk)
    assert "GameplaneHighErrorRate" in wallet and not any(a.startswith("GameplaneRisk") for a in wallet)
