"""Helpers of the real-node tests: platforms, Services reached from this host, the operator as a Pod.

The host reaches every Service's ClusterIP directly (kube-proxy's rules cover traffic from the node
itself) and Pod IPs through the node's bridge, so tests can talk to a platform the way a Pod would,
without port-forwards.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from typing import Any

from clusterlib import Run, wait_for

OPERATOR_RELEASE = "gp-real"
OPERATOR_NAMESPACE = "gameplane-real"
OPERATOR_ACCOUNT = f"{OPERATOR_RELEASE}-gameplane-operator"  # the chart's <release>-<chart> name
# The operator Pod watches these namespaces only: the kwok tests run their own operators elsewhere.
WATCHED = "real-*"


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def get_json(kubectl: Run, *args: str) -> dict[str, Any]:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)  # type: ignore[no-any-return]


def platform(kubectl: Run, ns: str, name: str) -> dict[str, Any]:
    return get_json(kubectl, "gamingplatform", name, "-n", ns)


def wait_ready(kubectl: Run, ns: str, name: str, timeout: float = 180, generation: int | None = None) -> float:
    """Seconds until the platform reports Ready=True for its current (or the given) generation."""
    start = time.monotonic()

    def ready() -> bool:
        gp = platform(kubectl, ns, name)
        gen = generation if generation is not None else gp["metadata"]["generation"]
        cond = condition(gp, "Ready")
        return cond.get("status") == "True" and gp["status"].get("observedGeneration") == gen

    try:
        wait_for(f"platform {ns}/{name} Ready", ready, timeout, interval=0.5)
    except AssertionError:
        gp = platform(kubectl, ns, name)
        pods = kubectl("get", "pods", "-n", ns, "-o", "wide", check=False).stdout
        raise AssertionError(f"{ns}/{name} not Ready after {timeout}s: {json.dumps(gp.get('status'), indent=1)}"
                             f"\n{pods}") from None  # fmt: skip
    return time.monotonic() - start


def service_url(kubectl: Run, ns: str, name: str, port_name: str = "http") -> str:
    svc = get_json(kubectl, "service", name, "-n", ns)
    port = next(p["port"] for p in svc["spec"]["ports"] if p.get("name") == port_name)
    return f"http://{svc['spec']['clusterIP']}:{port}"


def secret_value(kubectl: Run, ns: str, name: str, key: str) -> str:
    data = get_json(kubectl, "secret", name, "-n", ns)["data"]
    return base64.b64decode(data[key]).decode()


def pods(kubectl: Run, ns: str, selector: str = "", terminating: bool = False,
         jobs: bool = False) -> list[dict[str, Any]]:
    """Pods of `ns` (by label selector); those already being deleted, and those of Jobs (the
    services' migrations, which run to completion and are never Ready), only when asked for."""
    args = ["pods", "-n", ns] + (["-l", selector] if selector else [])
    items: list[dict[str, Any]] = get_json(kubectl, *args)["items"]
    return [p for p in items if (terminating or not p["metadata"].get("deletionTimestamp"))
            and (jobs or not any(o.get("kind") == "Job" for o in p["metadata"].get("ownerReferences", [])))]


def pod_states(kubectl: Run, ns: str, logs_of_unready: bool = True) -> str:
    """Each Pod of `ns`: ready or not, restarts, why its last container ended (OOMKilled, Error ...),
    and, for a Pod not Ready, its events and the tail of its previous container's log: what a
    failed assertion about the namespace needs to say."""
    lines = []
    for p in pods(kubectl, ns, terminating=True):
        name = p["metadata"]["name"]
        statuses = p["status"].get("containerStatuses") or []
        restarts = sum(c.get("restartCount", 0) for c in statuses)
        last = [c["lastState"]["terminated"].get("reason", "?") for c in statuses
                if c.get("lastState", {}).get("terminated")]
        waiting = [c["state"]["waiting"].get("reason", "?") for c in statuses if c.get("state", {}).get("waiting")]
        lines.append(f"{name}: ready={pod_ready(p)} phase={p['status'].get('phase')} restarts={restarts} "
                     f"last={last} waiting={waiting}")
        if logs_of_unready and not pod_ready(p):
            events = kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}",
                             "-o", "custom-columns=T:.lastTimestamp,R:.reason,M:.message", "--no-headers",
                             check=False).stdout  # fmt: skip
            previous = kubectl("logs", name, "-n", ns, "--previous", "--tail=30", check=False).stdout
            current = kubectl("logs", name, "-n", ns, "--tail=30", check=False).stdout
            lines.append(f"  events:\n{events[-2000:]}  previous log:\n{previous[-3000:]}\n"
                         f"  current log:\n{current[-3000:]}")
    return "\n".join(lines)


def pod_ready(pod: dict[str, Any]) -> bool:
    return condition(pod, "Ready").get("status") == "True" and pod["metadata"].get("deletionTimestamp") is None


def container_pid(node: Any, container_id: str) -> int:
    """The host PID of a container's main process, from the node's containerd."""
    out = subprocess.run(["ctr", "--address", str(node.containerd_socket), "-n", "k8s.io", "tasks", "ps",
                          container_id.removeprefix("containerd://")], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[2])  # a header "PID INFO", then the task's first process


def restricted(kubectl: Run, name: str) -> None:
    """A namespace enforcing Pod Security "restricted", deleted first if a previous run left it."""
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", "--timeout=120s")
    kubectl("create", "namespace", name)
    for mode in ("enforce", "warn", "audit"):
        kubectl("label", "namespace", name, f"pod-security.kubernetes.io/{mode}=restricted")


def local_backends(images: Any) -> list[str]:
    """helm arguments pointing the operator's platforms at the locally built dev PostgreSQL/NATS."""
    return ["--set", f"platformDefaults.postgresImage={images.BY_KEY['dev-postgres'].tag}",
            "--set", f"platformDefaults.natsImage={images.BY_KEY['dev-nats'].tag}"]  # fmt: skip


def admit_client(kubectl: Run, ns: str, platform: str, client: str, targets: tuple[str, ...]) -> None:
    """NetworkPolicies for a test workload (Pods labelled app.kubernetes.io/name=<client>) of the
    platform's namespace: out to DNS and the API port of `targets`, and into those targets from it.
    The platform's policies deny both ways by default (and the node enforces them), so a workload
    that is not one of the platform's services needs an explicit allow, as in any cluster."""
    client_pods = {"matchLabels": {"app.kubernetes.io/name": client}}
    services = {"matchLabels": {"app.kubernetes.io/instance": platform},
                "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": list(targets)}]}
    api_port = [{"port": 8000, "protocol": "TCP"}]
    dns = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                   "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
           "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    policies = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": f"{client}-out", "namespace": ns},
         "spec": {"podSelector": client_pods, "policyTypes": ["Egress"],
                  "egress": [dns, {"to": [{"podSelector": services}], "ports": api_port}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": f"{client}-in", "namespace": ns},
         "spec": {"podSelector": services, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": client_pods}], "ports": api_port}]}},
    ]  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": policies}))
