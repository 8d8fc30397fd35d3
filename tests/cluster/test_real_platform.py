"""The operator as a Pod on the real node brings the minimal sample to Ready through real probes,
every Pod restricted, non-root and read-only; the operator chart's `helm test` runs a real Pod.

Nothing here is faked: the kubelet runs the containers, readiness comes from the services' own
/readyz answering over HTTP, and the status the operator writes is compared with the Pods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clusterlib import Run, wait_for
from realnode import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    OPERATOR_RELEASE,
    condition,
    container_pid,
    get_json,
    platform,
    pod_ready,
    pods,
    wait_ready,
)

pytestmark = pytest.mark.cluster


def test_the_operator_runs_as_a_pod_with_its_charts_identity(pod_operator: dict[str, Any], kubectl: Run) -> None:
    [pod] = pods(kubectl, OPERATOR_NAMESPACE, "app.kubernetes.io/name=gameplane-operator")
    assert pod_ready(pod), pod["status"]
    assert pod["spec"]["nodeName"] == "gameplane-node"
    assert pod["spec"]["serviceAccountName"] == OPERATOR_ACCOUNT
    assert pod["spec"]["containers"][0]["image"] == "gameplane/operator:0.1.0"  # the chart's default tag
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] and status["restartCount"] == 0, status
    # The kubelet serves a container's log file as it is written: read until the line is there.
    started = "gameplane operator started: chart /charts/gameplane"
    logs = wait_for("the operator's start line in its log", lambda: (
        out if started in (out := kubectl("logs", "-n", OPERATOR_NAMESPACE, pod["metadata"]["name"]).stdout) else None
    ), timeout=30, interval=1)
    assert started in logs
    # The Pod's token is the chart's ServiceAccount: it may list Pods and GET through their proxy
    # (the fault drills' reports), but not read their logs (the chart grants no such right).
    can = kubectl("auth", "can-i", "get", "pods", "--subresource=log", "--as",
                  f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}", check=False)  # fmt: skip
    assert can.stdout.strip() == "no"


def test_minimal_sample_is_ready_through_real_probes(demo: dict[str, Any], kubectl: Run) -> None:
    ns = demo["namespace"]
    gp = platform(kubectl, ns, demo["name"])
    assert condition(gp, "Ready")["status"] == "True", gp["status"]
    running = {p["metadata"]["labels"].get("app.kubernetes.io/component"): p for p in pods(kubectl, ns)}
    # Every enabled service plus the dev PostgreSQL and NATS, each Pod ready on the real node.
    expected = {row["name"] for row in gp["status"]["services"]} | {"postgres", "nats"}
    assert set(running) == expected, sorted(running)
    for component, pod in running.items():
        assert pod["spec"]["nodeName"] == "gameplane-node", component
        assert pod_ready(pod), (component, pod["status"])
    # Services are ready because their own /readyz said so over HTTP, not because something claimed it.
    for row in gp["status"]["services"]:
        container = running[row["name"]]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", row["name"]
        assert row["ready"] and row["readyReplicas"] == row["replicas"] >= 1, row
    summary = gp["status"]["serviceSummary"]
    assert summary == f"{len(gp['status']['services'])}/{len(gp['status']['services'])}"
    print(f"\nminimal platform: Ready {demo['ready_seconds']:.1f}s after apply, {summary} services, "
          f"{len(running)} pods")


def test_status_counts_only_pods_that_passed_readiness(demo: dict[str, Any], kubectl: Run) -> None:
    """Negative control of the test above: a service whose readiness fails is counted as not ready
    while its container keeps running (the status follows the probe, not the process). players'
    /readyz pings its database; PostgreSQL is told to refuse connections to gp_players, something
    the operator has no reason to repair (scaling PostgreSQL down would be put back at once)."""
    ns, name = demo["namespace"], demo["name"]

    def sql(statement: str) -> None:
        kubectl("exec", "-n", ns, f"{name}-postgres-0", "--", "psql", "-U", "gameplane", "-d", "postgres",
                "-v", "ON_ERROR_STOP=1", "-Atc", statement)  # fmt: skip

    sql("ALTER DATABASE gp_players ALLOW_CONNECTIONS false")
    sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'gp_players'")
    try:
        def players_not_ready() -> dict[str, Any] | None:
            gp = platform(kubectl, ns, name)
            row = next(r for r in gp["status"]["services"] if r["name"] == "players")
            return gp if not row["ready"] and row["readyReplicas"] == 0 else None

        gp = wait_for("players counted not ready", players_not_ready, timeout=90)
        assert condition(gp, "Ready")["status"] == "False"
        assert "players" in condition(gp, "Ready")["message"], condition(gp, "Ready")
        [pod] = pods(kubectl, ns, "app.kubernetes.io/component=players")
        assert pod["status"]["phase"] == "Running" and not pod_ready(pod)
        others = [r for r in gp["status"]["services"] if r["name"] != "players"]
        assert all(r["ready"] for r in others), others  # only the broken one is counted out
    finally:
        sql("ALTER DATABASE gp_players ALLOW_CONNECTIONS true")
    wait_ready(kubectl, ns, name, timeout=180)


def test_every_pod_is_restricted_non_root_and_read_only(demo: dict[str, Any], kubectl: Run, real_node: Any) -> None:
    ns = demo["namespace"]
    labels = get_json(kubectl, "namespace", ns)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    seen = 0
    for pod in pods(kubectl, ns):
        name = pod["metadata"]["name"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True, name
        for c, status in zip(pod["spec"]["containers"], pod["status"]["containerStatuses"], strict=True):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            if "running" not in status.get("state", {}):
                continue  # a finished migration Job (docs/upgrades.md): no process left to look at
            # What the kernel says about the running process, not what the spec asks for.
            pid = container_pid(real_node, status["containerID"])
            proc = Path(f"/proc/{pid}")
            uids = next(ln.split()[1:] for ln in (proc / "status").read_text().splitlines() if ln.startswith("Uid:"))
            assert all(int(u) != 0 for u in uids), (name, uids)
            caps = next(ln.split()[1] for ln in (proc / "status").read_text().splitlines() if ln.startswith("CapEff:"))
            assert int(caps, 16) == 0, (name, caps)
            root = next(ln.split() for ln in (proc / "mountinfo").read_text().splitlines() if ln.split()[4] == "/")
            assert "ro" in root[5].split(","), (name, root)
            seen += 1
    assert seen >= 7  # five services, PostgreSQL and NATS
    # And from inside a service container: writing outside the scratch volume fails.
    pod = pods(kubectl, ns, "app.kubernetes.io/component=wallet")[0]["metadata"]["name"]
    write = kubectl("exec", "-n", ns, pod, "--", "touch", "/probe-write", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr, write.stderr
    tmp = kubectl("exec", "-n", ns, pod, "--", "touch", "/tmp/probe-write", check=False)
    assert tmp.returncode == 0, tmp.stderr  # negative control: the writable scratch volume works


def test_a_privileged_pod_is_refused_in_the_platform_namespace(demo: dict[str, Any], kubectl: Run) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root-probe"},
           "spec": {"containers": [{"name": "c", "image": "gameplane/gameplane:0.1.0",
                                    "securityContext": {"runAsUser": 0}}]}}  # fmt: skip
    out = kubectl("apply", "-n", demo["namespace"], "-f", "-", input=json.dumps(pod), check=False)
    assert out.returncode != 0 and "violates PodSecurity" in out.stderr, out.stderr


def test_helm_test_of_the_operator_chart_runs_a_real_pod(pod_operator: dict[str, Any], helm: Run) -> None:
    out = helm("test", OPERATOR_RELEASE, "-n", OPERATOR_NAMESPACE, "--timeout", "120s")
    # The hook Pod has no toleration for kwok's taint: it can only have run on the real node.
    assert "Phase:          Succeeded" in out.stdout, out.stdout
