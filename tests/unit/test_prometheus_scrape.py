"""What a real Prometheus scrapes from the services' and the operator's exporters, and
gameplane.devtools.prometheus, the pieces the live test (tests/system/test_live_prometheus.py)
stands on: a real Prometheus (Debian's binary) scraping one exporter with the job the Prometheus
Operator generates from the chart's ServiceMonitor labels its series as the Operator's targets are
labelled; the prometheus-adapter query is filled as the adapter fills it; the adapter's rules ship
with the umbrella chart and name the metric the HPA asks for.

Negative controls: the same exporter under a ServiceMonitor without honorLabels and relabeling gets
the Kubernetes Service's name as `service` (the failure the chart's ServiceMonitor prevents); a
ServiceMonitor that does not select the Service is refused.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from tests.unit.test_network_policy import NS, RELEASE, helm_template

from gameplane.devtools.infra import HOST, free_port
from gameplane.devtools.prometheus import PROMETHEUS, LocalPod, Prometheus, adapter_query, operator_scrape_job

REPO = Path(__file__).resolve().parents[2]
ADAPTER = REPO / "observability" / "prometheus-adapter" / "config.yaml"
MONITORING = ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"]


def objects(*args: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in helm_template(*args)}


@pytest.fixture(scope="module")
def exporter() -> str:
    """An exporter labelling its series with the service's own name, as the kit does."""
    registry = CollectorRegistry()
    Counter("gameplane_http_requests_total", "requests", ["service", "route"], registry=registry) \
        .labels("wallet", "/v1/wallet").inc(3)
    port = free_port()
    start_http_server(port, addr=HOST, registry=registry)
    return f"{HOST}:{port}"


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    if not PROMETHEUS.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{PROMETHEUS} is not installed: make host-deps (Debian package prometheus)")
        pytest.skip(f"PROMETHEUS NOT INSTALLED ({PROMETHEUS}): run sudo make host-deps")
    started: list[Prometheus] = []

    def start(*jobs: dict[str, Any]) -> Prometheus:
        server = Prometheus(tmp_path / f"prom{len(started)}", {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": list(jobs)})
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def scraped(prom: Prometheus, expr: str) -> list[dict[str, str]]:
    return [r["metric"] for r in prom.wait(lambda: prom.query(expr), 30, 0.5, what=expr)]


def test_series_carry_the_operators_target_labels_and_the_services_own_name(exporter: str, prometheus: Any) -> None:
    docs = objects(*MONITORING)
    monitor, service = docs[("ServiceMonitor", f"{RELEASE}-wallet")], docs[("Service", f"{RELEASE}-wallet")]
    pod = LocalPod(f"{RELEASE}-wallet-7c9d-x1", "wallet", exporter)
    prom = prometheus(operator_scrape_job(monitor, service, pod, interval="1s"))

    target = {"job": f"{RELEASE}-wallet", "namespace": NS, "pod": pod.name, "container": "wallet",
              "endpoint": "metrics", "instance": exporter}
    assert scraped(prom, "up") == [{"__name__": "up", **target, "service": "wallet"}]
    assert scraped(prom, "gameplane_http_requests_total") == [
        {"__name__": "gameplane_http_requests_total", **target, "service": "wallet", "route": "/v1/wallet"}]
    (active,) = prom.targets()
    assert active["scrapePool"] == f"serviceMonitor/{NS}/{RELEASE}-wallet/0"

    # The adapter's query for these series, filled for this Pod, parses and finds the Pod by its labels.
    (rule,) = yaml.safe_load(ADAPTER.read_text())["rules"]
    query = adapter_query(rule["metricsQuery"], series="gameplane_http_requests_total", namespace=NS, pods=[pod.name])
    assert [r["metric"] for r in prom.wait(lambda: prom.query(query), 30, 0.5, what=query)] == [{"pod": pod.name}]


def test_without_honor_labels_and_relabeling_the_kubernetes_service_name_wins(exporter: str, prometheus: Any) -> None:
    docs = objects(*MONITORING)
    monitor = copy.deepcopy(docs[("ServiceMonitor", f"{RELEASE}-wallet")])
    for endpoint in monitor["spec"]["endpoints"]:
        endpoint.pop("honorLabels")
        endpoint.pop("relabelings")
    prom = prometheus(operator_scrape_job(monitor, docs[("Service", f"{RELEASE}-wallet")],
                                          LocalPod(f"{RELEASE}-wallet-7c9d-x1", "wallet", exporter),
                                          interval="1s"))
    (series,) = scraped(prom, "gameplane_http_requests_total")
    assert (series["service"], series["exported_service"]) == (f"{RELEASE}-wallet", "wallet")
    assert scraped(prom, 'up{service="wallet"}' + " or vector(0)") == [{}]  # what the rules select is gone


def test_a_service_monitor_that_does_not_select_the_service_is_refused() -> None:
    docs = objects(*MONITORING)
    with pytest.raises(ValueError, match="does not select"):
        operator_scrape_job(docs[("ServiceMonitor", f"{RELEASE}-wallet")], docs[("Service", f"{RELEASE}-games")],
                            LocalPod("x", "games", "127.0.0.1:1"))


def test_the_adapter_query_is_filled_as_the_adapter_fills_it_for_pods() -> None:
    query = adapter_query("sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>}[2m]))",
                          series="gameplane_http_requests_total", namespace="casino", pods=["p-gw-a", "p-gw-b"])
    assert query == ('sum by (pod) (rate(gameplane_http_requests_total{namespace="casino",'
                     'pod=~"p-gw-a|p-gw-b"}[2m]))')
    with pytest.raises(KeyError):
        adapter_query("<<.Nope>>", series="x", namespace="n", pods=["p"])


def hpa_metric(*args: str) -> list[str]:
    docs = helm_template("--set", "name=gateway", "--set", "autoscaling.enabled=true", "--set",
                         "autoscaling.rpsTarget=50", *args, chart="charts/gameplane-service")
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    return [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]


def test_the_adapter_rules_ship_with_the_umbrella_chart_and_serve_the_metric_the_hpa_asks_for() -> None:
    asked = hpa_metric("--api-versions", "custom.metrics.k8s.io/v1beta1")
    assert len(asked) == 1
    assert hpa_metric() == []  # no custom metrics API, no Pods metric

    docs = objects("--set", "prometheusAdapter.enabled=true", "--set", "prometheusAdapter.namespace=monitoring")
    config_map = docs[("ConfigMap", f"{RELEASE}-prometheus-adapter")]
    assert config_map["metadata"]["namespace"] == "monitoring"
    shipped = yaml.safe_load(config_map["data"]["config.yaml"])
    assert shipped == yaml.safe_load(ADAPTER.read_text())
    assert [r["name"]["as"] for r in shipped["rules"]] == asked
    assert ("ConfigMap", f"{RELEASE}-prometheus-adapter") not in objects()  # off by default


# The operator's families, written out here (not imported from its metrics module). It cannot run in
# the system tier (no API server): its exposition is checked here, as its metrics server serves it.
OPERATOR_FAMILIES = {
    "gameplane_operator_reconciles": "counter",
    "gameplane_operator_reconcile_duration_seconds": "histogram",
    "gameplane_operator_api_writes": "counter",
    "gameplane_operator_platforms": "gauge",
    "gameplane_operator_platforms_ready": "gauge",
    "gameplane_operator_pending_reconciles": "gauge",
    "gameplane_operator_reconcile_errors": "counter",
    "gameplane_operator_drift_corrections": "counter",
}


@pytest.fixture(scope="module")
def operator_metrics() -> str:
    """The operator's metrics server, started as its startup handler starts it (prometheus_client's
    server over the default registry its metrics module fills)."""
    import gameplane_operator.handlers  # noqa: F401  (what the operator process imports)

    port = free_port()
    start_http_server(port, addr=HOST)
    return f"{HOST}:{port}"


def test_the_operators_exposition_parses_and_names_its_metrics(operator_metrics: str) -> None:
    text = httpx.get(f"http://{operator_metrics}/metrics", timeout=10).text
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert {k: families.get(k) for k in OPERATOR_FAMILIES} == OPERATOR_FAMILIES


def test_the_operator_is_scraped_with_the_operator_charts_service_monitor(operator_metrics: str,
                                                                          prometheus: Any) -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in helm_template(*MONITORING,
                                                                          chart="charts/gameplane-operator")}
    (monitor,) = [d for (kind, _), d in docs.items() if kind == "ServiceMonitor"]
    service = docs[("Service", monitor["metadata"]["name"])]
    prom = prometheus(operator_scrape_job(monitor, service, LocalPod(f"{monitor['metadata']['name']}-5f6d-q2",
                                                                     "operator", operator_metrics), interval="1s"))
    name = service["metadata"]["name"]
    (up,) = scraped(prom, "up")
    # the chart relabels `service` to one fixed name, whatever the release: the operator's alerts select on it
    assert up == {"__name__": "up", "job": name, "service": "gameplane-operator", "namespace": NS,
                  "endpoint": "metrics",
                  "pod": f"{name}-5f6d-q2", "container": "operator", "instance": operator_metrics}
    assert scraped(prom, "gameplane_operator_platforms")[0]["job"] == name
