"""Every alert has its runbook: each rule in observability/prometheus/rules/ links a page that
exists in docs/runbooks/ and is listed in its index; a service's own rule file reaches that
service's PrometheusRule (and only that service's); what the runbooks name (dashboards, their
panels, problem types) exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from tests.unit.test_network_policy import helm_template

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "observability" / "prometheus" / "rules"
RUNBOOKS = REPO / "docs" / "runbooks"
DASHBOARDS = REPO / "observability" / "grafana" / "dashboards"
SERVICES = REPO / "services" / "gameplane"
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


def test_own_rule_files_reach_their_services_prometheus_rule_only() -> None:
    games, wallet, players = rule_alerts("games"), rule_alerts("wallet"), rule_alerts("players")
    assert "GameplaneProviderSlowCallbacks" in games and "GameplaneProviderSlowCallbacks" not in wallet
    assert "GameplaneWalletReconciliationBreach" in wallet and "GameplaneWalletReconciliationBreach" not in games
    assert {"GameplaneServiceDown", "GameplaneEventsUnreadable"} <= set(players)
    assert not {"GameplaneProviderSlowCallbacks", "GameplaneWalletReconciliationBreach"} & set(players)


def test_the_slo_rules_ride_on_the_gateways_prometheus_rule_only() -> None:
    docs = helm_template("--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
                         "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
    rules = {d["metadata"]["name"]: [r.get("alert") or r["record"] for g in d["spec"]["groups"] for r in g["rules"]]
             for d in docs if d["kind"] == "PrometheusRule"}
    carrying = {name for name, names in rules.items() if "GameplaneSLOBurnFast" in names}
    assert carrying == {"p-gateway"}
    assert {"GameplaneSLOBurnSlow", "gameplane_slo:error_ratio:rate3d", "gameplane_slo:objective:ratio"} <= set(
        rules["p-gateway"])


def dashboard_names() -> tuple[set[str], set[str]]:
    """Titles of the dashboards and of every panel in them."""
    titles: set[str] = set()
    panels: set[str] = set()

    def walk(items: list[dict[str, object]]) -> None:
        for panel in items:
            panels.add(str(panel.get("title")))
            walk(panel.get("panels", []))  # type: ignore[arg-type]

    for path in DASHBOARDS.glob("*.json"):
        doc = json.loads(path.read_text())
        titles.add(doc["title"])
        walk(doc["panels"])
    return titles, panels


def problem_slugs() -> set[str]:
    """The `type` slugs the services answer with (ProblemType and Problem constructions)."""
    found: set[str] = set()
    for path in SERVICES.rglob("*.py"):
        found |= set(re.findall(r'(?:ProblemType|Problem)\(\s*\d{3},\s*"([a-z0-9-]+)"', path.read_text()))
    return found


def dangling_references(text: str, titles: set[str], panels: set[str], slugs: set[str]) -> list[str]:
    """Dashboards ("dashboard "<title>""), panels ("panel *<title>*") and problem types
    (https://gameplane.io/problems/<slug>, or "503 `<slug>`") a runbook names that do not exist."""
    text = " ".join(text.split())
    out = [f"dashboard {t!r}" for t in re.findall(r'[Dd]ashboards? "([^"]+)"', text) if t not in titles]
    for m in re.finditer(r"panels? \*([^*]+)\*(?: and \*([^*]+)\*)?", text):
        out += [f"panel {p!r}" for p in m.groups() if p and p not in panels]
    problems = re.findall(r"https://gameplane\.io/problems/([a-z0-9-]+)", text)
    problems += re.findall(r"\b[45]\d\d `([a-z][a-z0-9-]+)`", text)  # an answer named by status and slug
    out += [f"problem {s!r}" for s in problems if s not in slugs]
    out += [f"unnamed Grafana reference {g!r}" for g in re.findall(r'Grafana "([^"]+)"', text)]
    return out


def test_runbooks_name_only_dashboards_panels_and_problem_types_that_exist() -> None:
    titles, panels, slugs = *dashboard_names(), problem_slugs()
    assert {"gameplane / services (RED)", "Latency p50 / p99"} <= titles | panels
    assert {"service-unavailable", "dependency-unavailable", "fault-injected"} <= slugs
    named = 0
    for page in sorted(RUNBOOKS.glob("*.md")):
        text = page.read_text()
        named += len(re.findall(r'[Dd]ashboards? "|panels? \*|gameplane\.io/problems/', text))
        assert dangling_references(text, titles, panels, slugs) == [], page.name
    assert named >= 8  # the references are there to check


def test_a_runbook_naming_what_does_not_exist_is_reported() -> None:
    titles, panels, slugs = *dashboard_names(), problem_slugs()
    text = ('Grafana "gameplane RED" latency panel; dashboard "gameplane / RED", panel *Latency p99* and\n'
            "*Error ratio (5xx)*; the body's type https://gameplane.io/problems/upstream-down, or 503 `upstream-gone`.")
    assert dangling_references(text, titles, panels, slugs) == [
        "dashboard 'gameplane / RED'", "panel 'Latency p99'", "problem 'upstream-down'", "problem 'upstream-gone'",
        "unnamed Grafana reference 'gameplane RED'"]
