"""The operator as a real process (`python -m gameplane_operator`, its ServiceAccount's token):
SIGKILLed in the middle of a reconcile, restarted, and then idle. Writes are counted from the API
server's audit log, so nothing the operator does can hide from the count."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from clusterlib import (
    KWOK_SCHEDULING,
    OPERATOR_USER,
    Run,
    audit_writes,
    free_port,
    restricted_namespace,
    utcnow,
    wait_established,
    wait_for,
)

NS = "op-restart"
NAME = "kill"
GROUP, VERSION, PLURAL = "gameplane.io", "v1alpha1", "gamingplatforms"
SELECTOR = f"gameplane.io/platform={NAME},app.kubernetes.io/managed-by=gameplane-operator"
SERVICES = ["gateway", "players", "wallet", "games", "sessions", "payments", "bonus", "risk", "affiliates",
            "analytics", "web", "backoffice"]


class OperatorProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gameplane_operator", "--health-port", str(self.port), "--metrics-port", "0",
             "--bind", "127.0.0.1", "--namespace", NS],
            env=self.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for("operator liveness", self.healthy, 60)

    def healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
            return r.status == 200

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def op(operator_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(operator_env, tmp_path_factory.mktemp("operator") / "operator.log")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def api(admin: kubernetes.client.ApiClient) -> dict[str, Any]:
    return {
        "custom": kubernetes.client.CustomObjectsApi(admin),
        "core": kubernetes.client.CoreV1Api(admin),
        "apps": kubernetes.client.AppsV1Api(admin),
    }


def ready(api: dict[str, Any]) -> dict[str, Any] | None:
    obj = api["custom"].get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, NAME)
    conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
    current = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
    return obj if current and conds.get("Ready", {}).get("status") == "True" else None


def children(api: dict[str, Any]) -> dict[str, set[str]]:
    apps, core = api["apps"], api["core"]
    return {
        "deployments": {d.metadata.name for d in apps.list_namespaced_deployment(NS, label_selector=SELECTOR).items},
        "services": {s.metadata.name for s in core.list_namespaced_service(NS, label_selector=SELECTOR).items},
        "configmaps": {c.metadata.name for c in core.list_namespaced_config_map(NS, label_selector=SELECTOR).items},
    }


def monitoring_crd(kind: str, plural: str) -> dict[str, Any]:
    """A schema-less stand-in for one of the Prometheus Operator's CRDs: enough for the API to exist."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def prometheus_operator_api(kubectl: Run) -> Iterator[None]:
    """While this module runs, the cluster serves the Prometheus Operator's API (and not after)."""
    crds = [monitoring_crd("ServiceMonitor", "servicemonitors"), monitoring_crd("PrometheusRule", "prometheusrules")]
    names = [f"crd/{c['metadata']['name']}" for c in crds]
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": crds}))
    wait_established(kubectl, *names)
    yield
    kubectl("delete", *names, "--wait=true")


def test_killed_mid_reconcile_then_restarted_converges(
    op: OperatorProcess, api: dict[str, Any], kubectl: Run, crd: None, prometheus_operator_api: None
) -> None:
    restricted_namespace(kubectl, NS)
    op.start()
    spec = {"version": "0.1.0", "services": [{"name": "wallet", "replicas": 2}],
            "monitoring": {"labels": {"release": "kube-prometheus-stack"}}, "scheduling": KWOK_SCHEDULING}  # fmt: skip
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GamingPlatform", "metadata": {"name": NAME}, "spec": spec}
    api["custom"].create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    # SIGKILL the moment the first children exist: Secrets and ConfigMaps are applied before any
    # Deployment, so this lands inside the reconcile, with no chance to clean up.
    wait_for("first children", lambda: children(api)["configmaps"], 60, interval=0.01)
    op.stop(signal.SIGKILL)
    at_kill = children(api)
    assert len(at_kill["deployments"]) < len(SERVICES), "the kill came after the reconcile finished"

    op.start()
    obj = wait_for("Ready after restart", lambda: ready(api), 120)
    after = children(api)
    assert after["deployments"] == {f"{NAME}-{s}" for s in SERVICES}  # NATS is a StatefulSet
    assert after["services"] == {f"{NAME}-{s}" for s in SERVICES} | {f"{NAME}-nats", f"{NAME}-postgres"}
    assert f"{NAME}-endpoints" in after["configmaps"]
    assert obj["status"]["serviceSummary"] == f"{len(SERVICES)}/{len(SERVICES)}"
    uid = obj["metadata"]["uid"]
    for dep in api["apps"].list_namespaced_deployment(NS, label_selector=SELECTOR).items:
        assert [o.uid for o in dep.metadata.owner_references] == [uid]
        assert "prometheus.io/scrape" not in (dep.spec.template.metadata.annotations or {})

    # Monitoring through the Prometheus Operator's API, with the labels its Prometheus selects.
    conds = {c["type"]: c for c in obj["status"]["conditions"]}
    assert (conds["MonitoringConfigured"]["status"], conds["MonitoringConfigured"]["reason"]) == (
        "True", "PrometheusOperator")  # fmt: skip
    for plural in ("servicemonitors", "prometheusrules"):
        items = api["custom"].list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", NS, plural, label_selector=SELECTOR)["items"]  # fmt: skip
        assert len(items) == len(SERVICES), plural
        assert all(i["metadata"]["labels"]["release"] == "kube-prometheus-stack" for i in items)


def test_steady_state_makes_zero_writes_for_a_minute(
    op: OperatorProcess, api: dict[str, Any], controlplane: Any
) -> None:
    wait_for("Ready", lambda: ready(api), 60)
    # Let the last rollout events (Pods turning Ready, the final status write) settle.
    time.sleep(5)
    since = utcnow()
    time.sleep(60)
    writes = audit_writes(controlplane, OPERATOR_USER, since=since)
    assert writes == [], [(w["verb"], w["objectRef"]) for w in writes]
    assert op.healthy()


def test_restart_of_an_unchanged_platform_writes_nothing(
    op: OperatorProcess, api: dict[str, Any], controlplane: Any
) -> None:
    op.stop(signal.SIGTERM)
    since = utcnow()
    op.start()  # resume: a full reconcile of every platform
    time.sleep(10)
    writes = audit_writes(controlplane, OPERATOR_USER, since=since)
    assert writes == [], [(w["verb"], w["objectRef"]) for w in writes]
    assert ready(api)
