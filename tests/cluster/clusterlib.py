"""Helpers shared by the cluster-tier tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

OPERATOR_NS = "gameplane-system"
OPERATOR_SA = "gameplane-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
Run = Callable[..., subprocess.CompletedProcess[str]]


def audit_writes(controlplane: Any, user: str, since: str = "", until: str = "") -> list[dict[str, Any]]:
    """Write requests by `user` in the API server's audit log (timestamps are RFC 3339, UTC)."""
    out = []
    with open(controlplane.audit_log) as fh:
        for line in fh:
            e = json.loads(line)
            if e["user"]["username"] != user or e["verb"] not in WRITE_VERBS:
                continue
            ts = e["requestReceivedTimestamp"]
            if (since and ts < since) or (until and ts > until):
                continue
            out.append(e)
    return out


def free_port() -> int:
    from hack.controlplane import free_port as pick

    return int(pick())


def utcnow() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e6) % 1_000_000:06d}Z"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # not there yet (404, connection refused ...): keep waiting
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def wait_established(kubectl: Run, *crds: str, timeout: float = 60) -> None:
    """Each CustomResourceDefinition (`crd/<name>`) is Established. Polled rather than `kubectl
    wait`, which fails at once instead of waiting while a new CRD has no status yet."""
    path = '{.status.conditions[?(@.type=="Established")].status}'
    for crd in crds:
        wait_for(f"{crd} Established", lambda crd=crd: kubectl(
            "get", crd, "-o", f"jsonpath={path}", check=False).stdout.strip() == "True",
            timeout=timeout, interval=0.5)  # fmt: skip


def restricted_namespace(kubectl: Run, name: str) -> None:
    kubectl("create", "namespace", name)
    for mode in ("enforce", "warn", "audit"):
        kubectl("label", "namespace", name, f"pod-security.kubernetes.io/{mode}=restricted")


# kwok's fake nodes carry this taint (hack/controlplane.py) so that real workloads land on a real
# node; Pods that only need to reach Running (no container runs on kwok) are sent there explicitly.
KWOK_SCHEDULING: dict[str, Any] = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"}],
}


def kwok_values(key: str) -> list[str]:
    """helm arguments that put a chart's Pods on kwok: `key` is where the chart reads scheduling
    settings ("global.scheduling" for the platform charts; "" for the operator chart's top level)."""
    if not key:
        return [arg for k, v in KWOK_SCHEDULING.items() for arg in ("--set-json", f"{k}={json.dumps(v)}")]
    return ["--set-json", f"{key}={json.dumps(KWOK_SCHEDULING)}"]
