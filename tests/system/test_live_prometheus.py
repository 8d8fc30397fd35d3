"""A real Prometheus scraping `gameplane up` exactly as the Prometheus Operator would scrape the
platform the umbrella chart installs: every dashboard panel and every recording rule has data after
a short `gameplane load` run, the prometheus-adapter's query for the HPA's `rpsTarget` gives the
gateway's Pods a request rate, and stopping a service fires its GameplaneServiceDown alert.

The scrape configuration is the one the Operator generates from the chart's rendered ServiceMonitors
and Services (gameplane.devtools.prometheus.operator_scrape_job): targets labelled job, namespace,
service (= the Kubernetes Service name, p-<service>, before the ServiceMonitor's relabeling puts the
service's own name back), pod, container, endpoint, instance, with honor_labels. The rule files are
the chart's rendered PrometheusRules. Only the scrape interval (2 s, 1 s for the alert) and the
rule groups' evaluation interval (the business group's own 1m included) are shortened, and, for the
alert test alone, GameplaneServiceDown's `for` (2m in the chart; promtool proves that one in
observability/prometheus/tests/service-rules.test.yaml).

The operator cannot run here (there is no API server in this tier): its exposition is checked in
tests/unit/test_prometheus_scrape.py (its metrics server scraped with the operator chart's
ServiceMonitor), its alerts by promtool.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.test_network_policy import NS, RELEASE, helm_template

from gameplane.devtools.prometheus import (
    LocalPod,
    Prometheus,
    PrometheusError,
    adapter_query,
    operator_scrape_job,
    rule_files,
)

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "observability" / "grafana" / "dashboards"
ADAPTER = REPO / "observability" / "prometheus-adapter" / "config.yaml"
# What the Prometheus Operator puts on every target of a ServiceMonitor (besides __name__).
OPERATOR_LABELS = {"job", "namespace", "pod", "container", "endpoint", "instance", "service"}
LOAD_SECONDS = 25
# Grafana's built-in variables, as a dashboard over the last few minutes would fill them.
BUILTINS = {"__rate_interval": "1m", "__interval": "10s", "__range": "5m", "__range_s": "300",
            "__range_ms": "300000", "__interval_ms": "10000"}

# What honestly has no data after a short local run, with the reason: a regex over the expression a
# panel sends. A pattern no panel matches fails the test (the list cannot rot); what every other
# panel reads must have data.
NO_DATA_IN_A_SHORT_RUN: dict[str, str] = {
    r"gameplane_affiliates_(clicks|postbacks)_total\b": "gameplane load follows no affiliate link: no click, "
                                                         "no attributed player, no postback",
    r"gameplane_bonus_(grants_total|forfeits_total|liability_minor|open_grants|converted_minor_total|conversions_total)\b":
        "a fresh platform has no bonus campaign, so nothing is granted, forfeited or converted",
    r"gameplane_analytics_rtp_(certified|drift)\b": "analytics checks RTP every rtp_check_interval_seconds "
                                                    "(300 s, the first check after one interval): longer than the run",
    r"gameplane_fault_active\b": "no fault drill is applied",
    r'gameplane_events_consumed_total\{[^}]*outcome="error"': "no event fails in a healthy run",
    r"gameplane_gateway_upstream_errors_total\b": "no service behind the gateway times out or is down",
    r"gameplane_payments_webhook_rejections_total\b": "the PSP simulator signs every webhook correctly",
    r"gameplane_payments_risk_failsafe_total\b": "risk stays up: no payment is decided without it",
    r"gameplane_payments_reconciliation_mismatches\b": "payments' scheduled reconciliation is off by default "
                                                         "(reconcile_every_seconds=0) and nobody runs one",
}
# Dashboards and panels that read only the operator's metrics: the operator cannot run in this tier
# (no API server). Its exposition, and a real Prometheus scraping it through the operator chart's
# ServiceMonitor, are checked in tests/unit/test_prometheus_scrape.py.
OPERATOR_ONLY = "the operator does not run in the system tier"


def reads_only_the_operator(expr: str) -> bool:
    names = set(re.findall(r"\bgameplane_\w+", expr))
    return bool(names) and all(n.startswith("gameplane_operator_") for n in names)


def rendered(services: list[str]) -> list[dict[str, Any]]:
    """The umbrella chart's objects for `services` (and nothing else), with the Prometheus Operator's
    APIs present so that ServiceMonitors and PrometheusRules are rendered."""
    args = ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
            "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"]
    for name in ("rgs", "psp"):  # simulators are off by default in the chart, on in `gameplane up`
        if name in services:
            args += ["--set", f"{name}.enabled=true"]
    docs = helm_template(*args)
    names = {f"{RELEASE}-{s}" for s in services}
    return [d for d in docs if d["kind"] not in ("ServiceMonitor", "PrometheusRule", "Service", "Deployment")
            or d["metadata"]["name"] in names]


def scrape_jobs(docs: list[dict[str, Any]], platform: Any, interval: str) -> list[dict[str, Any]]:
    """One Operator-generated job per ServiceMonitor, its target the local process of that service."""
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    jobs = []
    state = platform.state()
    for name, monitor in sorted(by_kind["ServiceMonitor"].items()):
        service = name.removeprefix(f"{RELEASE}-")
        (container,) = by_kind["Deployment"][name]["spec"]["template"]["spec"]["containers"]
        host_port = platform.url(service).removeprefix("http://")
        pod = LocalPod(f"{name}-{state[service]['pid']}", container["name"], host_port)
        jobs.append(operator_scrape_job(monitor, by_kind["Service"][name], pod, interval=interval))
    return jobs


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    started: list[Prometheus] = []

    def start(platform: Any, *, interval: str, edit: Callable[[dict[str, Any]], None] | None = None) -> Prometheus:
        docs = rendered(sorted(platform.urls))
        files = rule_files(docs, tmp_path / "rules", edit, interval=interval)
        assert files, "the chart rendered no PrometheusRule"
        config = {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                  "rule_files": [str(p) for p in files], "scrape_configs": scrape_jobs(docs, platform, interval)}
        server = Prometheus(tmp_path / "prometheus", config)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def all_up(prom: Prometheus, services: set[str]) -> set[str] | None:
    up = {r["metric"]["service"] for r in prom.query("up == 1")}
    return up if up >= services else None


# -- dashboards ------------------------------------------------------------------------------------


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def variable_query(var: dict[str, Any]) -> str:
    query = var.get("query") or var.get("definition") or ""
    return str(query.get("query", "") if isinstance(query, dict) else query)


def substitute(expr: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        return values.get(name, m.group(0))  # not a variable (a "$1" in label_replace): left alone
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", one, expr)


def all_of(values: list[str]) -> str:
    """A multi-value variable as Grafana's Prometheus data source sends it: (a|b), regex characters
    escaped with a backslash that the PromQL string keeps."""
    return "(" + "|".join(re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in values) + ")"


def variable_values(prom: Prometheus, dashboard: dict[str, Any]) -> dict[str, str]:
    """Each query variable as Grafana fills it by default (its first option, or all of them for a
    multi-value one), its options asked of Prometheus as Grafana asks (label_values)."""
    chosen: dict[str, str] = dict(BUILTINS)
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query" or reads_only_the_operator(variable_query(var)):
            continue
        query = substitute(variable_query(var), chosen)
        m = re.fullmatch(r"\s*label_values\(\s*(?:(.+),\s*)?(\w+)\s*\)\s*", query)
        assert m, f"{dashboard['uid']}: variable {var['name']} is not label_values(...): {query}"
        found = sorted(prom.label_values(m.group(2), m.group(1)))
        assert found, f"{dashboard['uid']}: variable {var['name']} has no values: {query}"
        chosen[var["name"]] = all_of(found) if var.get("multi") or var.get("includeAll") else found[0]
        if var["name"] == "service":  # asked one by one too (a multi-value one as Grafana sends one value)
            chosen["__services"] = "\n".join(found)
            chosen["__services_multi"] = "1" if var.get("multi") or var.get("includeAll") else ""
    return chosen


def panel_queries(prom: Prometheus, dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str | None, str]]:
    """(panel title, the expression as Grafana sends it, the service it was asked for, the same
    expression for every service) for every target; a dashboard templated by `service` is asked
    for each service in turn."""
    chosen = variable_values(prom, dashboard)
    services: list[str | None] = [*chosen.pop("__services").split("\n")] if "__services" in chosen else [None]
    multi = bool(chosen.pop("__services_multi", ""))
    for service in services:
        values = {**chosen, **({"service": all_of([service]) if multi else service} if service else {})}
        for panel in panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr") and not reads_only_the_operator(target["expr"]):
                    yield (panel.get("title", ""), substitute(target["expr"], values), service,
                           substitute(target["expr"], chosen))


def exported_by(prom: Prometheus, expr: str, service: str) -> bool:
    """Whether `service` exports any metric `expr` reads."""
    names = set(re.findall(r"\bgameplane_\w+", expr))
    return any(prom.query(f'count({{__name__="{n}",service="{service}"}})') for n in names)


# -- the tests -------------------------------------------------------------------------------------


def run_load(platform: Any, seconds: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "GAMEPLANE_DATA_DIR"}
    run = subprocess.run(
        [sys.executable, "-m", "gameplane.cli", "load", "--data-dir", str(platform.data_dir), "--duration",
         str(seconds), "--rate", "3", "--players", "4", "--mix", "deposit=2,play=3,withdraw=1", "--json"],
        env=env, capture_output=True, text=True, timeout=seconds + 180)
    assert run.returncode == 0, run.stdout + run.stderr
    return dict(json.loads(run.stdout))


def test_every_panel_and_recording_rule_has_data_from_a_live_platform_scraped_as_the_operator_scrapes_it(
        platform: Any, prometheus_for: Callable[..., Prometheus]) -> None:
    services = set(platform.urls)
    prom = prometheus_for(platform, interval="2s")
    prom.wait(lambda: all_up(prom, services), 60, what=f"every target up: {prom.targets()}")

    # Every target carries exactly the labels the Operator gives it, and `service` is the
    # service's own name (the ServiceMonitor's relabeling), not the Kubernetes Service's.
    for target in prom.targets():
        labels = target["labels"]
        assert set(labels) == OPERATOR_LABELS, labels
        assert labels["job"] == f"{RELEASE}-{labels['service']}" and labels["namespace"] == NS, labels
    assert {r["metric"]["service"] for r in prom.query("up")} == services

    summary = run_load(platform, LOAD_SECONDS)
    assert summary["server_errors"] == 0, summary["errors_by_kind"]
    time.sleep(6)  # the last scrapes and two rule evaluations after the run

    # Every recording rule, evaluated by the server from the chart's PrometheusRules, has data.
    rules = prom.rules()
    assert [r for r in rules if r["health"] != "ok"] == []
    recording = [r for r in rules if r["type"] == "recording"]
    assert len(recording) >= 30
    empty_rules = [f"{r['name']} {r.get('labels', {})}" for r in recording if not prom.query(r["query"])]

    # Every dashboard panel, its variables filled from the server as Grafana fills them.
    dashboards = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    assert len(dashboards) >= 6
    operator_dashboards = {d["uid"] for d in dashboards if any(
        reads_only_the_operator(variable_query(v)) for v in d.get("templating", {}).get("list", []))}
    print(f"{OPERATOR_ONLY}: not asked: dashboards {sorted(operator_dashboards)} and operator-only panels")
    dashboards = [d for d in dashboards if d["uid"] not in operator_dashboards]
    empty_panels: dict[tuple[str, str], str] = {}
    allowed_used: set[str] = set()
    asked = 0
    for dashboard in dashboards:
        for title, sent, service, for_all in panel_queries(prom, dashboard):
            asked += 1
            where = (dashboard["uid"], title + (f" [service={service}]" if service else ""))
            try:
                if prom.query(sent):
                    continue
                # A panel asked for one service that exports none of what it reads (the gateway has
                # no outbox) is fed when it has data for all of them.
                if service and not exported_by(prom, sent, service) and prom.query(for_all):
                    continue
            except PrometheusError as exc:
                empty_panels[where] = f"{sent}: {exc}"
                continue
            reasons = [pattern for pattern in NO_DATA_IN_A_SHORT_RUN if re.search(pattern, sent)]
            if reasons:
                allowed_used.update(reasons)
            else:
                empty_panels[where] = sent
    every_expr = [t.get("expr", "") for d in dashboards for p in panels(d.get("panels", []))
                  for t in p.get("targets", [])]
    assert [p for p in NO_DATA_IN_A_SHORT_RUN if not any(re.search(p, e) for e in every_expr)] == []
    print(f"allowed to be empty and were: {sorted(allowed_used)}")
    no_data = "\n".join(empty_rules) + "\n" + "\n".join(f"{k}: {v}" for k, v in empty_panels.items())
    print(f"asked {asked} panel queries and {len(recording)} recording rules; no data:\n{no_data}")

    # The prometheus-adapter rule behind the HPA's rpsTarget: its query, filled as the adapter fills
    # it for the gateway's Pods, gives each a request rate; a Pod that is not there gives nothing.
    (rule,) = [r for r in yaml.safe_load(ADAPTER.read_text())["rules"]
               if r["name"]["as"] == "gameplane_http_requests_per_second"]
    series = {s["__name__"] for s in prom.api("series", **{"match[]": rule["seriesQuery"]})}
    assert series == {"gameplane_http_requests_total"}, series
    gateway_pods = prom.label_values("pod", 'up{service="gateway"}')
    assert len(gateway_pods) == 1
    query = adapter_query(rule["metricsQuery"], series="gameplane_http_requests_total", namespace=NS,
                          pods=gateway_pods)
    result = prom.query(query)
    assert [r["metric"] for r in result] == [{"pod": gateway_pods[0]}], result
    assert float(result[0]["value"][1]) > 0, result
    assert prom.query(adapter_query(rule["metricsQuery"], series="gameplane_http_requests_total",
                                    namespace=NS, pods=[f"{RELEASE}-gateway-gone"])) == []
    assert prom.query(adapter_query(rule["metricsQuery"], series="gameplane_http_requests_total",
                                    namespace="elsewhere", pods=gateway_pods)) == []

    assert empty_rules == [] and empty_panels == {}, f"no data:\n{no_data}"


SHORT_FOR = "10s"


def test_stopping_a_service_fires_its_service_down_alert(
        launch_platform: Callable[..., Any], prometheus_for: Callable[..., Prometheus]) -> None:
    platform = launch_platform(extra_args=["--only", "risk"])

    def shorten(rule: dict[str, Any]) -> None:
        if rule.get("alert") == "GameplaneServiceDown":
            assert rule["for"] == "2m"  # the chart's value, which promtool tests
            rule["for"] = SHORT_FOR

    prom = prometheus_for(platform, interval="1s", edit=shorten)
    prom.wait(lambda: all_up(prom, {"risk"}), 60, what=f"risk up: {prom.targets()}")

    def service_down() -> list[dict[str, Any]]:
        return [a for a in prom.alerts() if a["labels"]["alertname"] == "GameplaneServiceDown"]

    # Quiet while risk answers, for longer than the alert's `for` (a rule that always fires fails here).
    time.sleep(15)
    assert service_down() == []

    platform.stop_service("risk")
    stopped = time.monotonic()
    firing = prom.wait(lambda: [a for a in service_down() if a["state"] == "firing"], 60, interval=0.5,
                       what="GameplaneServiceDown firing")
    print(f"GameplaneServiceDown firing {time.monotonic() - stopped:.1f}s after risk stopped (for: {SHORT_FOR})")
    assert [a["labels"] for a in firing] == [{"alertname": "GameplaneServiceDown", "namespace": NS,
                                              "service": "risk", "severity": "page"}]
    assert firing[0]["annotations"]["runbook_url"].endswith("docs/runbooks/service-down.md")
