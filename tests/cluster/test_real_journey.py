"""A journey inside the cluster: a Job in the service image registers, logs in, launches a game and
plays 20 spins through the RGS simulator's Pod; balance, history and reconciliation agree."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from clusterlib import Run, wait_for
from realnode import admit_client, get_json, pods, wait_ready

pytestmark = pytest.mark.cluster
JOB_SCRIPT = Path(__file__).parent / "jobs" / "journey.py"


def job_manifest(ns: str, platform: str, spins: int) -> dict[str, Any]:
    restricted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                  "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
    env = [
        {"name": "GATEWAY_URL", "value": f"http://{platform}-gateway.{ns}.svc"},
        {"name": "WALLET_URL", "value": f"http://{platform}-wallet.{ns}.svc"},
        {"name": "SPINS", "value": str(spins)},
        {"name": "PAYMENTS_KEY", "valueFrom": {"secretKeyRef": {"name": "test-callers", "key": "payments.pem"}}},
        {"name": "BACKOFFICE_KEY", "valueFrom": {"secretKeyRef": {"name": "test-callers", "key": "backoffice.pem"}}},
    ]  # fmt: skip
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "journey", "namespace": ns},
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 240, "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "journey", "app.kubernetes.io/part-of": "gameplane",
                                    "app.kubernetes.io/instance": platform}},
            "spec": {
                "restartPolicy": "Never", "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "journey", "image": "gameplane/gameplane:0.1.0", "imagePullPolicy": "Never",
                                "command": ["python", "/journey/journey.py"], "env": env, "securityContext": restricted,
                                "volumeMounts": [{"name": "script", "mountPath": "/journey", "readOnly": True}]}],
                "volumes": [{"name": "script", "configMap": {"name": "journey"}}],
            }}},
    }  # fmt: skip


def test_journey_inside_the_cluster(demo: dict[str, Any], kubectl: Run) -> None:
    ns, name = demo["namespace"], demo["name"]
    # No default key reaches a cluster: the simulated studio is onboarded like any provider, with a
    # Secret of its own that games and the simulator both mount.
    kubectl("create", "secret", "generic", "rgs-credentials", "-n", ns, "--from-literal=dialect=canonical",
            f"--from-literal=secret={secrets.token_hex(32)}")
    kubectl("patch", "gamingplatform", name, "-n", ns, "--type=merge",
            "-p", json.dumps({"spec": {"services": [{"name": "rgs", "enabled": True}],
                                       "providers": [{"name": "rgs", "baseUrl": f"http://{name}-rgs.{ns}.svc",
                                                      "secretRef": {"name": "rgs-credentials"}}]}}))  # fmt: skip
    try:
        wait_ready(kubectl, ns, name, timeout=180)
        [rgs] = pods(kubectl, ns, "app.kubernetes.io/component=rgs")
        # Discovery is a mounted ConfigMap: the kubelet refreshes it in the running sessions Pod
        # within its sync period, and sessions builds the launch URL from it.
        [sessions] = pods(kubectl, ns, "app.kubernetes.io/component=sessions")
        endpoints_file = "/etc/gameplane/endpoints/endpoints.json"
        mounted = ("exec", "-n", ns, sessions["metadata"]["name"], "--", "cat", endpoints_file)
        wait_for("the endpoint map in the sessions Pod to name rgs", lambda: '"rgs"' in kubectl(*mounted).stdout,
                 timeout=120, interval=2)
        # The platform's policies deny by default and the node enforces them: the journey (standing
        # in for the ingress controller, the player's browser at the studio, and payments) is
        # admitted explicitly, to exactly the services it talks to.
        admit_client(kubectl, ns, name, "journey", ("gateway", "wallet", "rgs"))
        kubectl("create", "configmap", "journey", "-n", ns, f"--from-file=journey.py={JOB_SCRIPT}")
        kubectl("apply", "-f", "-", input=json.dumps(job_manifest(ns, name, spins=20)))

        def finished() -> dict[str, Any] | None:
            job = get_json(kubectl, "job", "journey", "-n", ns)
            done = {c["type"] for c in job["status"].get("conditions") or [] if c["status"] == "True"}
            return job if done & {"Complete", "Failed"} else None

        job = wait_for("the journey Job to finish", finished, timeout=240, interval=1)
        logs = kubectl("logs", "-n", ns, "job/journey").stdout
        line = next((ln for ln in logs.splitlines() if ln.startswith("JOURNEY ")), None)
        assert line is not None, logs[-3000:]
        result = json.loads(line.removeprefix("JOURNEY "))
        assert result["problems"] == [], result
        assert job["status"].get("succeeded") == 1, job["status"]
        # The spins went to the simulator's Pod through its Service's cluster DNS name.
        assert result["launch_host"] == f"{name}-rgs.{ns}.svc", result
        assert result["settled"] == 20 and result["history"]["bet"] == 20 and result["reconciliation_ok"] is True
        assert result["wallet_balance"] == result["final"] == 10_000 - result["staked"] + result["won"]
        assert rgs["spec"]["nodeName"] == "gameplane-node"
    finally:
        kubectl("delete", "job", "journey", "-n", ns, "--ignore-not-found", "--wait=false")
        kubectl("delete", "configmap", "journey", "-n", ns, "--ignore-not-found")
        kubectl("delete", "networkpolicy", "journey-out", "journey-in", "-n", ns, "--ignore-not-found")
        kubectl("patch", "gamingplatform", name, "-n", ns, "--type=merge",
                "-p", '{"spec": {"services": null, "providers": null}}')
        wait_ready(kubectl, ns, name, timeout=180)
        kubectl("delete", "secret", "rgs-credentials", "-n", ns, "--ignore-not-found")
