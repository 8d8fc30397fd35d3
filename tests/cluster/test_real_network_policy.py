"""The platform's NetworkPolicies, enforced on the real node (kube-router), do what they say.

Every probe is a TCP connect from inside a real Pod to another Pod's address. A refusal could
also mean nothing listens there, so each refused path has a control: the same port of the same
Pod reached from a Pod that the policies do admit. The expectations are written from the
platform's intended call graph (docs/architecture.md), not read from the chart.

kube-router adds a new Pod's address to its peers' ipsets a few seconds after the Pod starts
(Kubernetes leaves that delay to the network plugin; longer on a busy node), so a path that must
be open is given up to a minute to open. A refusal is never waited for: a Pod the policies do not
know yet is denied by default, so waiting could only hide a leak; each is checked after its
source's first open path, when the source is known.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from clusterlib import Run, wait_for
from realnode import get_json, pod_ready, pods, restricted

pytestmark = pytest.mark.cluster

PROBE = """
import socket, sys
s = socket.socket(); s.settimeout(4)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("open")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print("refused" if exc.errno == 111 else f"error {exc.errno}")
"""


def component_pod(kubectl: Run, ns: str, component: str) -> dict[str, Any]:
    found = [p for p in pods(kubectl, ns, f"app.kubernetes.io/component={component}") if pod_ready(p)]
    assert found, f"no ready {component} Pod in {ns}"
    return found[0]


def connect(kubectl: Run, source: dict[str, Any], target: dict[str, Any], port: int) -> str:
    """What a TCP connect from `source` (a running Pod) to `target`'s address and `port` gives."""
    meta = source["metadata"]
    out = kubectl("exec", "-n", meta["namespace"], meta["name"], "--", "python", "-c", PROBE,
                  target["status"]["podIP"], str(port), check=False)  # fmt: skip
    return out.stdout.strip() or f"exec failed: {out.stderr.strip()[-300:]}"


def opens(kubectl: Run, source: dict[str, Any], target: dict[str, Any], port: int) -> bool:
    """The path opens within a minute (see the module's note); the last answer is in the failure."""
    answers: list[str] = []

    def is_open() -> bool:
        answers.append(connect(kubectl, source, target, port))
        return answers[-1] == "open"

    try:
        wait_for(f"{source['metadata']['name']} -> {target['metadata']['name']}:{port}", is_open, timeout=60)
    except Exception as exc:
        raise AssertionError(f"never opened; answers: {answers[-3:]}") from exc
    return True


@pytest.fixture(scope="module")
def outsider(kubectl: Run) -> Iterator[dict[str, Any]]:
    """A Pod in the namespace Prometheus is admitted from (the chart's default scrapeFrom), standing
    in for any workload of the cluster that is not the platform's."""
    ns = "monitoring"
    restricted(kubectl, ns)
    sec = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
           "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "outsider", "namespace": ns},
           "spec": {"nodeSelector": {"gameplane.io/node": "real"}, "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [{"name": "probe", "image": "gameplane/gameplane:0.1.0",
                                    "imagePullPolicy": "Never", "command": ["sleep", "3600"],
                                    "securityContext": sec}]}}  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(pod))
    wait_for("the outsider Pod", lambda: pod_ready(get_json(kubectl, "pod", "outsider", "-n", ns)), timeout=60)
    yield get_json(kubectl, "pod", "outsider", "-n", ns)
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_service_reaches_only_the_services_it_calls(demo: dict[str, Any], kubectl: Run) -> None:
    ns = demo["namespace"]
    wallet, games, sessions = (component_pod(kubectl, ns, c) for c in ("wallet", "games", "sessions"))
    # games moves money through the wallet; sessions never calls it.
    assert opens(kubectl, games, wallet, 8000)
    assert connect(kubectl, sessions, wallet, 8000) == "refused"
    # Egress is denied too: the wallet calls nobody over HTTP (sessions is listening: control below).
    assert opens(kubectl, games, sessions, 8000)
    assert connect(kubectl, wallet, sessions, 8000) == "refused"


def test_postgres_admits_only_services_that_own_a_database(demo: dict[str, Any], kubectl: Run) -> None:
    ns = demo["namespace"]
    postgres = component_pod(kubectl, ns, "postgres")
    wallet, gateway = component_pod(kubectl, ns, "wallet"), component_pod(kubectl, ns, "gateway")
    assert opens(kubectl, wallet, postgres, 5432)
    assert connect(kubectl, gateway, postgres, 5432) == "refused"  # the internet-facing gateway has no database


def test_other_namespaces_reach_the_metrics_port_and_nothing_else(
    demo: dict[str, Any], kubectl: Run, outsider: dict[str, Any],
) -> None:
    ns = demo["namespace"]
    wallet, games, postgres = (component_pod(kubectl, ns, c) for c in ("wallet", "games", "postgres"))
    # Prometheus's namespace scrapes the metrics port ...
    assert opens(kubectl, outsider, wallet, 9090)
    # ... and nothing more: not the API port with its /internal routes, not the database.
    assert connect(kubectl, outsider, wallet, 8000) == "refused"
    assert connect(kubectl, outsider, postgres, 5432) == "refused"
    # Inside the platform a caller of the API port still has no business on the metrics port.
    assert connect(kubectl, games, wallet, 9090) == "refused"
