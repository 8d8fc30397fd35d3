"""An operator that watches one listed namespace holds namespaced Roles there and nothing
cluster-wide on Secrets or workloads: the real API server's authorizer refuses it elsewhere, and it
reconciles a platform in its namespace with only those rights (kopf.testing.KopfRunner with its own
ServiceAccount's token, RBAC rendered from the operator chart with watchNamespaces)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from clusterlib import KWOK_SCHEDULING, Run, free_port, restricted_namespace, wait_for
from kopf.testing import KopfRunner

from hack import controlplane as cp_module

OPERATOR_NS = "nsop-system"
SA = "nsop-gameplane-operator"
USER = f"system:serviceaccount:{OPERATOR_NS}:{SA}"
WATCHED, OTHER = "nsop-watched", "nsop-other"
GROUP, VERSION, PLURAL = "gameplane.io", "v1alpha1", "gamingplatforms"
SPEC = {"version": "0.1.0", "scheduling": KWOK_SCHEDULING}


@pytest.fixture(scope="module")
def identity(controlplane: Any, crd: None, kubectl: Run) -> Path:
    for ns in (WATCHED, OTHER):
        restricted_namespace(kubectl, ns)
    return Path(cp_module.operator_identity(controlplane, OPERATOR_NS, SA,
                                            helm_args=("--set-json", f'watchNamespaces=["{WATCHED}"]')))


def _can(kubectl: Run, verb: str, resource: str, *where: str) -> bool:
    out = kubectl("auth", "can-i", verb, resource, *where, "--as", USER, check=False)
    assert out.stdout.strip() in ("yes", "no"), out.stderr
    return out.stdout.strip() == "yes"


@pytest.mark.parametrize(("verb", "resource"), [
    ("get", "secrets"), ("list", "secrets"), ("watch", "secrets"), ("patch", "deployments.apps"),
    ("delete", "networkpolicies.networking.k8s.io"), ("patch", "gamingplatforms.gameplane.io/status"),
])  # fmt: skip
def test_rights_in_the_watched_namespace_only(identity: Path, kubectl: Run, verb: str, resource: str) -> None:
    assert _can(kubectl, verb, resource, "-n", WATCHED)
    assert not _can(kubectl, verb, resource, "-n", OTHER)
    assert not _can(kubectl, verb, resource, "-n", "default")
    assert not _can(kubectl, verb, resource, "-A")


def test_cluster_wide_it_reads_crds_and_namespaces_and_nothing_else(identity: Path, kubectl: Run) -> None:
    # kopf lists both even when it watches plain names (without them it logs 403s and retries).
    assert _can(kubectl, "list", "customresourcedefinitions.apiextensions.k8s.io")
    assert _can(kubectl, "watch", "namespaces")
    for verb, resource in (("delete", "namespaces"), ("create", "clusterroles.rbac.authorization.k8s.io"),
                           ("get", "nodes"), ("update", "customresourcedefinitions.apiextensions.k8s.io")):
        assert not _can(kubectl, verb, resource), (verb, resource)


@pytest.fixture(scope="module")
def operator(identity: Path, tool_env: dict[str, str]) -> Iterator[KopfRunner]:
    health = free_port()
    env = {"KUBECONFIG": str(identity), "GAMEPLANE_OPERATOR_HELM": str(cp_module.tool("helm")),
           "GAMEPLANE_OPERATOR_DEBOUNCE_SECONDS": "0.2", "GAMEPLANE_OPERATOR_METRICS_PORT": "0",
           "PATH": tool_env["PATH"]}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    args = ["run", "--standalone", f"--namespace={WATCHED}", "--liveness", f"http://127.0.0.1:{health}/healthz",
            "-m", "gameplane_operator.handlers"]  # fmt: skip
    try:
        with KopfRunner(args, timeout=60) as runner:
            yield runner
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert runner.exception is None, runner.exception
    # Nothing was refused along the way: the Roles are all it needed (its output is complete only
    # once it has stopped).
    assert "Forbidden" not in runner.stdout, runner.stdout[-3000:]


def _ready(custom: kubernetes.client.CustomObjectsApi, ns: str) -> dict[str, Any] | None:
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "casino")
    conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
    return obj if conds.get("Ready", {}).get("status") == "True" else None


def test_it_reconciles_the_watched_namespace_and_leaves_the_other_alone(
        operator: KopfRunner, admin: kubernetes.client.ApiClient) -> None:
    custom, apps = kubernetes.client.CustomObjectsApi(admin), kubernetes.client.AppsV1Api(admin)
    for ns in (OTHER, WATCHED):
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GamingPlatform", "metadata": {"name": "casino"},
                "spec": SPEC}
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
    ready = wait_for("the watched platform Ready", lambda: _ready(custom, WATCHED), timeout=180)
    assert ready["status"]["serviceSummary"] == "12/12"
    watched = {d.metadata.name for d in apps.list_namespaced_deployment(WATCHED).items}
    assert {f"casino-{s}" for s in (
        "gateway", "players", "wallet", "games", "sessions", "payments", "bonus", "risk", "affiliates",
        "analytics", "web", "backoffice")} <= watched
    # The platform in the other namespace was never seen: no status, no children.
    other = custom.get_namespaced_custom_object(GROUP, VERSION, OTHER, PLURAL, "casino")
    assert not other.get("status")
    assert apps.list_namespaced_deployment(OTHER).items == []
