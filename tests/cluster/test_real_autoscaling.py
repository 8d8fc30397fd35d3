"""Autoscaling on requests per second, on the real node: a Prometheus (Debian's server, in a Pod)
scrapes the demo platform's metrics ports through its NetworkPolicies, prometheus-adapter (built
from its Go module) serves custom.metrics.k8s.io with the rules the umbrella chart ships, and the
gateway's HorizontalPodAutoscaler — rendered by the operator once the API exists — scales the
gateway out under `gameplane load`, because of that metric (CPU stays under its target)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clusterlib import Run, wait_for
from realnode import get_json, pod_ready, pods, service_url, wait_ready

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
METRIC = "gameplane_http_requests_per_second"
RPS_TARGET = 1  # per Pod; the load below is several times that, at a CPU cost far under the CPU target


@pytest.fixture(scope="module")
def custom_metrics(demo: dict[str, Any], kubectl: Run, helm: Run) -> Iterator[str]:
    """Prometheus and prometheus-adapter in `monitoring`; the APIService Available."""
    from hack import images

    ns = demo["namespace"]
    manifest = (REPO / "hack" / "manifests" / "prometheus-adapter.yaml").read_text()
    manifest = (manifest.replace("PROMETHEUS_IMAGE", images.BY_KEY["prometheus"].tag)
                .replace("ADAPTER_IMAGE", images.BY_KEY["prometheus-adapter"].tag))
    kubectl("apply", "-f", "-", input=manifest)
    # The adapter's rules, exactly as the umbrella chart ships them (its ConfigMap, rendered here
    # into the adapter's namespace).
    rules = helm("template", "gp", "charts/gameplane", "--show-only", "templates/prometheus-adapter.yaml",
                 "--set", "prometheusAdapter.enabled=true", "--set", "prometheusAdapter.namespace=monitoring",
                 "--set", "prometheusAdapter.configMapName=prometheus-adapter-config").stdout  # fmt: skip
    kubectl("apply", "-f", "-", input=rules)

    def available() -> bool:
        svc = get_json(kubectl, "apiservice", "v1beta1.custom.metrics.k8s.io")
        return any(c["type"] == "Available" and c["status"] == "True" for c in svc["status"].get("conditions", []))

    try:
        kubectl("rollout", "status", "deployment/prometheus", "-n", "monitoring", "--timeout=180s")
        write_targets(kubectl, ns)
        wait_for("custom.metrics.k8s.io Available", available, timeout=180, interval=2)
        yield ns
    finally:
        # the APIServices first: while one points at a Service that is gone, API discovery fails for
        # its group, and the namespace controller cannot finish deleting any namespace
        kubectl("delete", "apiservice", "v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io",
                "--ignore-not-found", check=False)
        kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=manifest, check=False)


def write_targets(kubectl: Run, ns: str) -> list[str]:
    """Prometheus' file_sd targets, written into its Pod: every Pod port named `metrics` in `ns`,
    labelled as the Prometheus Operator labels a ServiceMonitor's targets (`namespace`, `pod`).
    Debian's server has no Kubernetes discovery; this is the list it would find, so it is written
    again whenever the Pods change. Returns the Pods."""
    targets = [{"targets": [f"{p['status']['podIP']}:{port['containerPort']}"],
                "labels": {"namespace": ns, "pod": p["metadata"]["name"]}}
               for p in pods(kubectl, ns) if p["status"].get("podIP")
               for c in p["spec"]["containers"] for port in c.get("ports") or [] if port.get("name") == "metrics"]
    kubectl("exec", "-i", "-n", "monitoring", "deployment/prometheus", "--", "sh", "-c",
            "cat > /prometheus/targets.json.new && mv /prometheus/targets.json.new /prometheus/targets.json",
            input=json.dumps(targets))  # fmt: skip
    return [t["labels"]["pod"] for t in targets]


def gateway_rps(kubectl: Run, ns: str) -> dict[str, float]:
    """The custom metric per gateway Pod, as the HPA controller reads it."""
    raw = kubectl("get", "--raw", f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{ns}/pods/*/{METRIC}"
                  "?labelSelector=app.kubernetes.io%2Fcomponent%3Dgateway", check=False)
    if raw.returncode != 0:
        return {}
    return {i["describedObject"]["name"]: _quantity(i["value"]) for i in json.loads(raw.stdout)["items"]}


def _quantity(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def test_the_adapter_serves_each_pods_request_rate_from_prometheus(custom_metrics: str, kubectl: Run) -> None:
    ns = custom_metrics
    gateways = {p["metadata"]["name"] for p in pods(kubectl, ns, "app.kubernetes.io/component=gateway")}
    # Requests to the public catalogue while waiting: a counter with labels exists from its first
    # request on, and a rate needs it to grow between two scrapes.
    catalogue = service_url(kubectl, ns, "demo-gateway") + "/v1/games"

    def rates() -> dict[str, float] | None:
        assert httpx.get(catalogue, timeout=10).status_code == 200
        m = gateway_rps(kubectl, ns)
        return m if set(m) == gateways and all(v > 0 for v in m.values()) else None

    served = wait_for("the gateway's request rate in the custom metrics API", rates, timeout=120, interval=2)
    assert all(v < 5 for v in served.values()), served  # about one request every 2-3 s, not more
    # negative control: a metric the rules do not define is not served
    missing = kubectl("get", "--raw", f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{ns}/pods/*/no_such_metric",
                      check=False)  # fmt: skip
    assert missing.returncode != 0 and "(NotFound)" in missing.stderr and "no_such_metric" in missing.stderr, missing


def _hpa(kubectl: Run, ns: str, name: str) -> dict[str, Any]:
    return get_json(kubectl, "hpa", name, "-n", ns)


def _pods_metric(hpa: dict[str, Any]) -> float | None:
    for m in hpa.get("status", {}).get("currentMetrics") or []:
        if m["type"] == "Pods" and m["pods"]["metric"]["name"] == METRIC:
            return _quantity(m["pods"]["current"]["averageValue"])
    return None


def test_the_gateway_scales_out_on_requests_per_second_under_load(custom_metrics: str, kubectl: Run) -> None:
    ns, name = custom_metrics, "demo"
    hpa_name = f"{name}-gateway"
    kubectl("patch", "gamingplatform", name, "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"services": [
        {"name": "gateway", "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 2,
                                            "cpuTargetPercent": 100, "rpsTarget": RPS_TARGET}}]}}))  # fmt: skip
    load: subprocess.Popen[str] | None = None
    try:
        # The operator renders the requests-per-second metric only when the API exists (its
        # capability probe), next to CPU.
        def rendered() -> dict[str, Any] | None:
            h = _hpa(kubectl, ns, hpa_name) if _exists(kubectl, ns, hpa_name) else None
            return h if h and any(m["type"] == "Pods" for m in h["spec"]["metrics"]) else None

        hpa = wait_for("the gateway's HPA with the Pods metric", rendered, timeout=120, interval=2)
        assert [m["pods"]["target"]["averageValue"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"] == [
            str(RPS_TARGET)]
        # More than one replica allowed spreads the Pods (topology constraints): a new gateway Pod,
        # which Prometheus is told about.
        kubectl("rollout", "status", f"deployment/{name}-gateway", "-n", ns, "--timeout=180s")
        write_targets(kubectl, ns)
        gateway = service_url(kubectl, ns, f"{name}-gateway")

        # Negative control: under a trickle (a request every 3 s or so) the HPA reads the metric,
        # under its target: no scale-out.
        def reading() -> dict[str, Any] | None:
            assert httpx.get(gateway + "/v1/games", timeout=10).status_code == 200
            h = _hpa(kubectl, ns, hpa_name)
            return h if _pods_metric(h) is not None else None

        idle = wait_for("the HPA reading the metric under a trickle", reading, timeout=180, interval=3)
        assert _pods_metric(idle) < RPS_TARGET and idle["status"]["desiredReplicas"] == 1, idle["status"]

        # A registration goes through before the load starts: right after its Pod was replaced the
        # gateway answered players' routes 503 for a while (seen here: the new Pod's egress not yet
        # admitted); `gameplane load` registers its players once, at the start.
        refusals: list[str] = []

        def registered() -> bool:
            r = httpx.post(gateway + "/v1/players/register", timeout=30, json={
                "email": f"probe-{time.monotonic_ns()}@example.com", "password": "probe-In-Cluster-2026",
                "date_of_birth": "1990-01-02", "country": "MT", "currency": "EUR"})
            if r.status_code == 503:
                refusals.append(r.text[:300])
                return False
            assert r.status_code == 201, r.text
            return True

        wait_for("a registration through the new gateway Pod", registered, timeout=120, interval=3)
        if refusals:
            print(f"\nautoscaling: {len(refusals)} registration(s) answered 503 first: {refusals[0]}")
        load = subprocess.Popen(
            [sys.executable, "-m", "gameplane.cli", "load", "--gateway", gateway, "--rate", "6", "--duration", "150",
             "--players", "6", "--mix", "play=1", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
        started = time.monotonic()

        def scaled_out() -> dict[str, Any] | None:
            if load is not None and load.poll() is not None:
                out, err = load.communicate()
                raise AssertionError(f"gameplane load ended early ({load.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
            h = _hpa(kubectl, ns, hpa_name)
            return h if h["status"].get("desiredReplicas", 1) > 1 else None

        try:
            scaled = wait_for("the HPA to scale the gateway out", scaled_out, timeout=150, interval=3)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nHPA status: {_hpa(kubectl, ns, hpa_name)['status']}") from None
        took = time.monotonic() - started
        assert _pods_metric(scaled) is not None and _pods_metric(scaled) > RPS_TARGET, scaled["status"]
        events = kubectl("get", "events", "-n", ns, "--field-selector",
                         f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={hpa_name}",
                         "-o", "json").stdout  # fmt: skip
        reasons = [e["message"] for e in json.loads(events)["items"] if e["reason"] == "SuccessfulRescale"]
        assert any(f"pods metric {METRIC} above target" in r for r in reasons), reasons
        wait_for("a second gateway Pod Ready", lambda: sum(
            pod_ready(p) for p in pods(kubectl, ns, "app.kubernetes.io/component=gateway")) >= 2, timeout=120)
        print(f"\nautoscaling: the gateway scaled out {took:.0f}s after the load began "
              f"(metric {_pods_metric(scaled):.2f}/s per Pod, target {RPS_TARGET})")
    finally:
        if load is not None:
            load.terminate()
            load.communicate(timeout=30)
        kubectl("patch", "gamingplatform", name, "-n", ns, "--type=merge", "-p", '{"spec": {"services": null}}')
        wait_for("the gateway's HPA gone", lambda: not _exists(kubectl, ns, hpa_name), timeout=120, interval=2)
        wait_ready(kubectl, ns, name, timeout=180)


def _exists(kubectl: Run, ns: str, hpa: str) -> bool:
    return kubectl("get", "hpa", hpa, "-n", ns, check=False).returncode == 0
