"""The GamingPlatform status, computed from what the children report (pure functions).

Conditions follow the Kubernetes convention: a transition time changes only when the status does,
so recomputing an unchanged status yields an identical object and the operator writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkloadInfo:
    """What the operator keeps (in a kopf index) about one Deployment of a platform."""

    component: str
    name: str
    desired: int
    ready: int
    updated: int
    current: bool  # the controller has seen the latest spec (observedGeneration == generation)
    failure: str  # non-empty when the rollout is stuck (ProgressDeadlineExceeded, ReplicaFailure)


@dataclass(frozen=True)
class AutoscalerInfo:
    component: str
    name: str
    min_replicas: int
    max_replicas: int
    current: int
    desired: int


@dataclass(frozen=True)
class EndpointInfo:
    component: str
    url: str


@dataclass(frozen=True)
class Outcome:
    """How the last reconcile went."""

    ok: bool
    reason: str
    message: str
    applied: int = 0
    pruned: int = 0
    monitoring: tuple[bool, str, str] = (False, "Unknown", "not reconciled yet")  # status, reason, message


def workload_ready(w: WorkloadInfo) -> bool:
    return w.current and w.updated >= w.desired and w.ready >= max(w.desired, 1)


def _condition(
    old: dict[str, dict[str, Any]], ctype: str, status: bool, reason: str, message: str, generation: int, now: str
) -> dict[str, Any]:
    value = "True" if status else "False"
    prev = old.get(ctype)
    since = prev["lastTransitionTime"] if prev and prev.get("status") == value else now
    return {
        "type": ctype,
        "status": value,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }


def compute(
    *,
    platform: dict[str, Any],
    services: list[str],
    workloads: dict[str, WorkloadInfo],
    autoscalers: dict[str, AutoscalerInfo],
    endpoints: dict[str, EndpointInfo],
    outcome: Outcome,
    paused: bool,
    dashboards: list[dict[str, str]],
    observed_generation: int | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """`observed_generation`: the generation the outcome is about (default: the platform's own).

    A status refresh between a spec change and its reconcile must not claim the new generation.
    """
    meta, spec = platform["metadata"], platform.get("spec") or {}
    generation = int(meta.get("generation") or 0) if observed_generation is None else observed_generation
    old_status = platform.get("status") or {}
    old = {c["type"]: c for c in old_status.get("conditions") or []}
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")

    rows, waiting, failing = [], [], []
    for svc in services:
        w = workloads.get(svc)
        row: dict[str, Any] = {"name": svc, "ready": bool(w and workload_ready(w))}
        row["replicas"] = w.desired if w else 0
        row["readyReplicas"] = w.ready if w else 0
        if svc in endpoints:
            row["endpoint"] = endpoints[svc].url
        if svc in autoscalers:
            a = autoscalers[svc]
            row["autoscaler"] = {
                "name": a.name,
                "minReplicas": a.min_replicas,
                "maxReplicas": a.max_replicas,
                "currentReplicas": a.current,
                "desiredReplicas": a.desired,
            }
        rows.append(row)
        if not row["ready"]:
            waiting.append(svc)
        if w and w.failure:
            failing.append(f"{svc}: {w.failure}")
    ready_count = len(services) - len(waiting)

    if paused:
        ready = (False, "Paused", "reconciliation is paused by the gameplane.io/paused annotation")
    elif not outcome.ok:
        ready = (False, outcome.reason, outcome.message)
    elif waiting:
        summary = f"{ready_count}/{len(services)} services ready; waiting for {', '.join(waiting)}"
        ready = (False, "ServicesNotReady", summary)
    else:
        ready = (True, "AllServicesReady", f"all {len(services)} services ready")
    if paused:
        reconciled = (False, "Paused", "the gameplane.io/paused annotation is set; no changes are applied")
    elif outcome.ok:
        reconciled = (True, outcome.reason, outcome.message)
    else:
        reconciled = (False, outcome.reason, outcome.message)
    degraded = (
        (True, "RolloutStuck", "; ".join(failing))
        if failing
        else (True, outcome.reason, outcome.message)
        if not outcome.ok
        else (False, "AsExpected", "no failure observed")
    )
    faults = [f for f in spec.get("faults") or [] if f.get("enabled", True)]
    faults_cond = (
        (True, "FaultsInjected", ", ".join(f"{f['scenario']}@{f.get('service') or 'all'}" for f in faults))
        if faults
        else (False, "NoFaults", "no fault scenario is active")
    )
    conds = [
        _condition(old, "Ready", *ready, generation, stamp),
        _condition(old, "Reconciled", *reconciled, generation, stamp),
        _condition(old, "MonitoringConfigured", *outcome.monitoring, generation, stamp),
        _condition(old, "Degraded", *degraded, generation, stamp),
        _condition(old, "FaultsActive", *faults_cond, generation, stamp),
    ]
    status: dict[str, Any] = {
        "observedGeneration": generation if not paused else old_status.get("observedGeneration", 0),
        "serviceSummary": f"{ready_count}/{len(services)}",
        "conditions": conds,
        "services": rows,
        "dashboards": dashboards,
    }
    gw = spec.get("gateway") or {}
    exposed = (gw.get("ingress") or {}).get("enabled") or (gw.get("gatewayAPI") or {}).get("enabled")
    if exposed and gw.get("host"):
        scheme = "https" if (gw.get("ingress") or {}).get("tlsSecretName") or (gw.get("gatewayAPI") or {}) else "http"
        status["gatewayUrl"] = f"{scheme}://{gw['host']}"
    elif "gateway" in endpoints:
        status["gatewayUrl"] = endpoints["gateway"].url
    return status


def transitions(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(condition type, new status, reason) for every condition whose status changed."""
    before = {c["type"]: c["status"] for c in old.get("conditions") or []}
    return [
        (c["type"], c["status"], c["reason"]) for c in new["conditions"] if before.get(c["type"]) != c["status"]
    ]
