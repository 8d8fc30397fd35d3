"""The alerting rules, checked and unit-tested by the real `promtool` (Debian's prometheus package,
installed by `make host-deps`), over every rule file as the charts render it.

Every alert has a promtool case where it fires and one where it stays quiet, and every scraped
series those cases feed carries the labels the Prometheus Operator gives a ServiceMonitor's
targets; both are checked here from the files themselves, with negative controls (a rule file
whose alert has no case, a series labelled otherwise, a case whose expectation is wrong).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.test_network_policy import helm_template

from gameplane import catalog

REPO = Path(__file__).resolve().parents[2]
PROM = REPO / "observability" / "prometheus"
RULES = PROM / "rules"
TESTS = PROM / "tests"
PROMTOOL = Path("/usr/bin/promtool")
# The service the unit tests of service-rules.yaml are written for (their series say service="wallet").
TESTED_AS = "wallet"
# What the Prometheus Operator puts on every target of a ServiceMonitor (besides __name__).
OPERATOR_LABELS = frozenset({"job", "namespace", "pod", "container", "endpoint", "instance", "service"})


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not PROMTOOL.exists():
        if os.environ.get("CI"):
            pytest.fail(f"promtool is not installed ({PROMTOOL}): make host-deps (Debian package prometheus)")
        pytest.skip(f"PROMTOOL NOT INSTALLED ({PROMTOOL}): run sudo make host-deps (Debian package prometheus)")
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def render(path: Path, service: str) -> str:
    """The file as the gameplane-service chart renders it for `service` (templates/prometheusrule.yaml)."""
    return path.read_text().replace("$SERVICE", service)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Rule files (service-rules.yaml rendered for TESTED_AS) beside their unit tests, as promtool needs them."""
    for path in RULES.glob("*.yaml"):
        (tmp_path / path.name).write_text(render(path, TESTED_AS))
    for path in TESTS.glob("*.test.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def alerts_of(rule_file: Path) -> list[str]:
    doc = yaml.safe_load(rule_file.read_text())
    return [r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r]


def untested(rule_files: list[Path], test_files: list[Path]) -> list[str]:
    """Alerts of `rule_files` lacking a promtool case where they fire or one where they stay quiet."""
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in test_files:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    problems = []
    for path in rule_files:
        for alert in alerts_of(path):
            if alert not in fires:
                problems.append(f"{path.name}: {alert} has no case where it fires")
            if alert not in quiet:
                problems.append(f"{path.name}: {alert} has no case where it stays quiet")
    return problems


SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$")
LABEL = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


def unlabelled(test_files: list[Path]) -> list[str]:
    """Input series of scraped metrics (recorded ones have a colon) missing a label the Prometheus
    Operator sets on every ServiceMonitor target."""
    problems = []
    for path in test_files:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for item in case.get("input_series", []):
                m = SERIES.match(item["series"].strip())
                if m is None:
                    problems.append(f"{path.name}: {item['series']} has no labels")
                    continue
                if ":" in m.group(1):
                    continue
                missing = OPERATOR_LABELS - {k for k, _ in LABEL.findall(m.group(2))}
                if missing:
                    problems.append(f"{path.name}: {item['series']} lacks {sorted(missing)}")
    return problems


def test_every_rule_file_passes_promtool_check_as_the_charts_render_it(tmp_path: Path) -> None:
    files = []
    for service in catalog.BUILT:
        out = tmp_path / f"service-rules.{service}.yaml"
        out.write_text(render(RULES / "service-rules.yaml", service))
        assert "$SERVICE" not in out.read_text()
        files.append(out)
    files += [p for p in sorted(RULES.glob("*.yaml")) if p.name != "service-rules.yaml"]
    assert len(files) >= len(catalog.BUILT) + 8  # every service's rendering and the own/platform files
    out = promtool("check", "rules", *map(str, files), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(files), out.stdout


def test_every_rule_file_has_its_promtool_unit_tests() -> None:
    for rule_file in sorted(RULES.glob("*.yaml")):
        test_file = TESTS / rule_file.name.replace(".yaml", ".test.yaml")
        assert test_file.is_file(), f"{rule_file.name} has no {test_file.relative_to(REPO)}"
        assert yaml.safe_load(test_file.read_text())["rule_files"] == [rule_file.name]


def test_promtool_unit_tests_pass(workdir: Path) -> None:
    tests = sorted(p.name for p in workdir.glob("*.test.yaml"))
    assert len(tests) == len(list(RULES.glob("*.yaml")))
    out = promtool("test", "rules", *tests, cwd=workdir)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(tests), out.stdout


def test_every_alert_fires_in_one_case_and_stays_quiet_in_another() -> None:
    rule_files = sorted(RULES.glob("*.yaml"))
    assert sum(len(alerts_of(p)) for p in rule_files) >= 22
    assert untested(rule_files, sorted(TESTS.glob("*.test.yaml"))) == []


def test_an_alert_without_both_cases_is_reported(tmp_path: Path) -> None:
    rules = tmp_path / "x-rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"alert": "Untested", "expr": "vector(1)"}, {"alert": "OnlyFires", "expr": "vector(1)"}]}]}))
    tests = tmp_path / "x-rules.test.yaml"
    tests.write_text(yaml.safe_dump({"rule_files": ["x-rules.yaml"], "tests": [{"input_series": [], "alert_rule_test": [
        {"eval_time": "1m", "alertname": "OnlyFires", "exp_alerts": [{"exp_labels": {}}]}]}]}))
    assert untested([rules], [tests]) == ["x-rules.yaml: Untested has no case where it fires",
                                          "x-rules.yaml: Untested has no case where it stays quiet",
                                          "x-rules.yaml: OnlyFires has no case where it stays quiet"]


def test_every_scraped_series_is_labelled_as_the_prometheus_operator_labels_it() -> None:
    assert unlabelled(sorted(TESTS.glob("*.test.yaml"))) == []


def test_a_series_labelled_otherwise_is_reported(tmp_path: Path) -> None:
    tests = tmp_path / "x.test.yaml"
    tests.write_text(yaml.safe_dump({"tests": [{"input_series": [
        {"series": 'gameplane_outbox_pending{service="wallet",namespace="casino"}', "values": "1"},
        {"series": 'job:gameplane_recorded:rate5m{job="x"}', "values": "1"}]}]}))
    assert unlabelled([tests]) == [
        "x.test.yaml: gameplane_outbox_pending{service=\"wallet\",namespace=\"casino\"} lacks "
        "['container', 'endpoint', 'instance', 'job', 'pod']"]


def test_promtool_fails_a_case_whose_expectation_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "x-rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"alert": "Backlog", "expr": "gameplane_outbox_pending > 1000"}]}]}))
    (tmp_path / "x-rules.test.yaml").write_text(yaml.safe_dump({"rule_files": ["x-rules.yaml"], "tests": [{
        "interval": "1m", "input_series": [{"series": 'gameplane_outbox_pending{service="wallet"}', "values": "5x5"}],
        "alert_rule_test": [{"eval_time": "3m", "alertname": "Backlog",
                             "exp_alerts": [{"exp_labels": {"service": "wallet"}}]}]}]}))
    out = promtool("test", "rules", "x-rules.test.yaml", cwd=tmp_path)
    assert out.returncode != 0 and "FAILED" in out.stdout + out.stderr, out.stdout


def service_monitor(service: str) -> dict[str, Any]:
    docs = helm_template("--set", f"name={service}", "--set", "global.monitoring.serviceMonitor=true",
                         "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
                         chart="charts/gameplane-service")
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    return monitor


def test_the_service_monitor_keeps_the_service_label_the_rules_select() -> None:
    # The Operator would label the target service="p-games" (the Kubernetes Service); the rules
    # select service="games": the exporter's label must win, and `up` must carry the same name.
    (endpoint,) = service_monitor("games")["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True
    assert {"targetLabel": "service", "replacement": "games"} in endpoint["relabelings"]


def test_the_slo_objectives_in_the_docs_are_the_rules_objectives() -> None:
    doc = yaml.safe_load((RULES / "slo-rules.yaml").read_text())
    in_rules = {r["labels"]["slo"]: float(re.fullmatch(r"vector\((.+)\)", r["expr"]).group(1))  # type: ignore[union-attr]
                for g in doc["groups"] for r in g["rules"] if r.get("record") == "gameplane_slo:objective:ratio"}
    rows = re.findall(r"^\| `([a-z-]+)` \|.*\| ([\d.]+) % of [a-z]+ \|", (REPO / "docs" / "slos.md").read_text(), re.M)
    in_docs = {slo: float(pct) / 100 for slo, pct in rows}
    assert len(in_rules) == 4
    assert in_docs == pytest.approx(in_rules)
    recorded = {r["labels"]["slo"] for g in doc["groups"] for r in g["rules"]
                if r.get("record", "").startswith("gameplane_slo:error_ratio:rate")}
    assert recorded == set(in_rules)  # every SLO has its error ratios (and no ratio lacks an objective)


def unshipped(rule_files: list[Path], charts: Path) -> list[str]:
    """Rule files no chart carries (a link in some chart's files/ resolving to the file)."""
    shipped = {p.resolve() for p in charts.glob("*/files/*.yaml")}
    return [p.name for p in rule_files if p.resolve() not in shipped]


def test_every_rule_file_is_shipped_by_a_chart() -> None:
    # The services' files by the service chart, the operator's by the operator chart
    # (tests/unit/test_operator_monitoring.py renders it).
    rules = sorted(RULES.glob("*.yaml"))
    assert "operator-rules.yaml" in {p.name for p in rules}
    assert unshipped(rules, REPO / "charts") == []
    # negative control: a rule file without a link is reported
    assert unshipped([*rules, RULES / "nobody-rules.yaml"], REPO / "charts") == ["nobody-rules.yaml"]
