"""The operator chart's RBAC and NetworkPolicy, rendered by the real `helm`: namespaced Roles when
it watches listed namespaces, a ClusterRole only when it must (every namespace, or a glob), no
wildcard anywhere; its Pod reaches the API server and DNS and admits only Prometheus."""

from __future__ import annotations

from typing import Any

from tests.unit.test_network_policy import DNS, NS_LABELS, PROMETHEUS, Address, Pod, allowed, helm_template

CHART = "charts/gameplane-operator"
# Everything the operator writes or reads inside a platform's namespace, written out.
NAMESPACED = {"gamingplatforms", "gamingplatforms/status", "events", "configmaps", "secrets", "services",
              "serviceaccounts", "deployments", "statefulsets", "horizontalpodautoscalers", "poddisruptionbudgets",
              "networkpolicies", "ingresses", "servicemonitors", "prometheusrules", "httproutes",
              "jobs",  # the services' migration Jobs
              "pods", "pods/proxy"}  # FaultsActive: the pods' own /readyz report


def _render(*args: str) -> list[dict[str, Any]]:
    return helm_template(*args, chart=CHART)


def _resources(role: dict[str, Any]) -> set[str]:
    return {r for rule in role["rules"] for r in rule["resources"]}


def _of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_watching_listed_namespaces_grants_roles_there_and_nothing_cluster_wide_on_secrets() -> None:
    docs = _render("--set-json", 'watchNamespaces=["casino-a","casino-b"]')
    (cluster_role,) = _of(docs, "ClusterRole")
    # kopf lists CRDs and namespaces even when it watches plain names (found on a real API server:
    # tests/cluster/test_operator_namespaced.py); names and labels, nothing inside.
    assert _resources(cluster_role) == {"customresourcedefinitions", "namespaces"}
    assert {v for rule in cluster_role["rules"] for v in rule["verbs"]} == {"get", "list", "watch"}
    roles = {r["metadata"]["namespace"]: r for r in _of(docs, "Role")}
    assert set(roles) == {"casino-a", "casino-b"}
    assert all(_resources(r) == NAMESPACED for r in roles.values())
    bindings = {b["metadata"]["namespace"]: b for b in _of(docs, "RoleBinding")}
    assert set(bindings) == {"casino-a", "casino-b"}
    for b in bindings.values():
        assert b["roleRef"]["kind"] == "Role"
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "p-gameplane-operator", "namespace": "casino"}]


def test_the_release_namespace_template_resolves() -> None:
    docs = _render("--set-json", 'watchNamespaces=["{{ .Release.Namespace }}"]')
    assert [r["metadata"]["namespace"] for r in _of(docs, "Role")] == ["casino"]


def test_watching_every_namespace_or_a_glob_needs_the_cluster_role() -> None:
    for args in ((), ("--set-json", 'watchNamespaces=["casino-*"]')):
        docs = _render(*args)
        (cluster_role,) = _of(docs, "ClusterRole")
        assert _resources(cluster_role) == NAMESPACED | {"customresourcedefinitions", "namespaces"}
        assert not _of(docs, "Role") and not _of(docs, "RoleBinding")


def test_no_wildcards() -> None:
    for args in ((), ("--set-json", 'watchNamespaces=["casino-a"]')):
        for role in [*_of(_render(*args), "ClusterRole"), *_of(_render(*args), "Role")]:
            for rule in role["rules"]:
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule


OPERATOR = Pod("operator", "casino",
               {"app.kubernetes.io/name": "gameplane-operator", "app.kubernetes.io/instance": "p"},
               {"health": 8080, "metrics": 9090})


def test_the_operator_pod_reaches_the_api_server_and_dns_and_admits_only_prometheus() -> None:
    docs = _render("--set-json", 'networkPolicy.apiServer.cidrs=["172.18.0.2/32"]')
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert len(policies) == 1
    assert allowed(policies, OPERATOR, Address("172.18.0.2"), 6443)
    assert allowed(policies, OPERATOR, Address("172.18.0.2"), 443)
    assert not allowed(policies, OPERATOR, Address("172.18.0.3"), 6443)
    assert not allowed(policies, OPERATOR, Address("93.184.216.34"), 443)
    assert allowed(policies, OPERATOR, DNS, 53)
    assert allowed(policies, PROMETHEUS, OPERATOR, 9090)
    assert not allowed(policies, PROMETHEUS, OPERATOR, 8080)
    NS_LABELS.setdefault("default", {"kubernetes.io/metadata.name": "default"})
    for stranger in (Pod("x", "casino", {"app": "x"}), Pod("y", "default", {"app.kubernetes.io/name": "prometheus"})):
        assert not allowed(policies, stranger, OPERATOR, 9090)
        assert not allowed(policies, stranger, OPERATOR, 8080)
    # The chart's own test Pod reads the health endpoint.
    tester = Pod("t", "casino",
                 {"app.kubernetes.io/name": "gameplane-operator-test", "app.kubernetes.io/instance": "p"})
    assert allowed(policies, tester, OPERATOR, 8080)


def test_pods_are_only_listed_and_proxied_for_a_get() -> None:
    """FaultsActive reads each pod's /readyz through the API server's proxy: a GET, nothing more
    (create on pods/proxy would let the operator POST to any route of a service)."""
    for args in ((), ("--set-json", 'watchNamespaces=["casino-a"]')):
        for role in [*_of(_render(*args), "ClusterRole"), *_of(_render(*args), "Role")]:
            for rule in role["rules"]:
                if "pods" in rule["resources"]:
                    assert rule["verbs"] == ["list"], rule
                if "pods/proxy" in rule["resources"]:
                    assert rule["verbs"] == ["get"], rule
