"""The GamingPlatform status, computed from what the children report (pure functions).

Conditions follow the Kubernetes convention: a transition time changes only when the status does,
so recomputing an unchanged status yields an identical object and the operator writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .refs import ALL_FOUND, Resolution

# Ready=False reasons that describe a platform on its way (starting, rolling out, paused by its
# owner): their Events are Normal. Every other False reason is a problem and a Warning.
PROGRESSING = frozenset({"ServicesNotReady", "BackendsNotReady", "Paused"})
_BACKEND_NAMES = {"postgres": "PostgreSQL", "nats": "NATS"}


@dataclass(frozen=True)
class WorkloadInfo:
    """What the operator keeps (in a kopf index) about one Deployment or StatefulSet of a platform."""

    component: str
    name: str
    desired: int
    ready: int  # Pods passing readiness, old and new template together
    updated: int  # Pods of the current template
    current: bool  # the controller has seen the latest spec (observedGeneration == generation)
    failure: str  # non-empty when the rollout is stuck (ProgressDeadlineExceeded, ReplicaFailure)
    total: int = 0  # all non-terminating Pods, old template included


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
    stage: str = ""  # where a failed reconcile stopped (metrics.STAGES); empty when it succeeded


def workload_ready(w: WorkloadInfo) -> bool:
    """A finished rollout, as `kubectl rollout status` judges one: every desired replica runs the
    current template, no old replica is left, and as many replicas pass readiness. The ready
    count alone would also count Pods of the old template while new ones are still starting."""
    return w.current and w.updated >= w.desired and w.total <= w.updated and w.ready >= max(w.desired, 1)


def durability(spec: dict[str, Any]) -> tuple[bool, str, str]:
    """DataDurable: whether a restart of the platform's own PostgreSQL or NATS keeps their data.

    The embedded servers run on an emptyDir unless the spec sizes a volume (a cluster without a
    default StorageClass would leave a claim Pending forever); that is fine for a demo and a
    disaster for money, so the status says it instead of the manual only."""
    db, msg = spec.get("database") or {}, spec.get("messaging") or {}
    lost = []
    if db.get("mode", "embedded") == "embedded" and not (db.get("embedded") or {}).get("storageSize"):
        lost.append(("EphemeralDatabase", "the development PostgreSQL keeps its data in an emptyDir: a restart "
                     "of its Pod loses every balance and ledger entry (set spec.database.embedded.storageSize, "
                     "or use database.mode external)"))
    if msg.get("mode", "embedded") == "embedded" and not (msg.get("embedded") or {}).get("storageSize"):
        lost.append(("EphemeralEvents", "the development NATS keeps its stream in an emptyDir: a restart of its "
                     "Pod loses the events no consumer has read yet (set spec.messaging.embedded.storageSize, "
                     "or use messaging.mode external)"))
    if not lost:
        return True, "PersistentStorage", "the platform's data and events are on volumes or external servers"
    reason = lost[0][0] if len(lost) == 1 else "EphemeralStorage"
    return False, reason, "; ".join(m for _, m in lost)


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
    backends: tuple[str, ...] = (),
    secrets: Resolution | None = None,
    faults: tuple[bool, str, str] | None = None,
) -> dict[str, Any]:
    """`observed_generation`: the generation the outcome is about (default: the platform's own).

    A status refresh between a spec change and its reconcile must not claim the new generation.
    `backends`: the platform's own PostgreSQL / NATS workloads (by component), which must be
    ready too. `secrets`: whether the Secrets the spec references exist. `faults`: FaultsActive as
    the Pods report it (faults.condition); None when they were not asked (then a drill in the
    spec is only pending: the condition never says True on the spec's word alone).
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
        row["updatedReplicas"] = w.updated if w else 0
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
    backends_waiting = []
    for name in backends:
        b = workloads.get(name)
        if not (b and workload_ready(b)):
            backends_waiting.append(name)
        if b and b.failure:
            failing.append(f"{name}: {b.failure}")
    secrets = secrets or Resolution(True, ALL_FOUND, "")

    if paused:
        ready = (False, "Paused", "reconciliation is paused by the gameplane.io/paused annotation")
    elif not outcome.ok:
        ready = (False, outcome.reason, outcome.message)
    elif not secrets.ok:
        ready = (False, secrets.reason, secrets.message)
    elif waiting:
        summary = f"{ready_count}/{len(services)} services ready; waiting for {', '.join(waiting + backends_waiting)}"
        ready = (False, "ServicesNotReady", summary)
    elif backends_waiting:
        ready = (False, "BackendsNotReady", f"all {len(services)} services ready; waiting for "
                 f"the development {' and '.join(_BACKEND_NAMES.get(b, b) for b in backends_waiting)}")  # fmt: skip
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
    if faults is not None:
        faults_cond = faults
    elif any(f.get("enabled", True) for f in spec.get("faults") or []):
        faults_cond = (False, "FaultsPending", "no Pod has reported the asked faults yet")
    else:
        faults_cond = (False, "NoFaults", "no fault scenario is applied")
    conds = [
        _condition(old, "Ready", *ready, generation, stamp),
        _condition(old, "Reconciled", *reconciled, generation, stamp),
        _condition(old, "SecretsResolved", secrets.ok, secrets.reason, secrets.message, generation, stamp),
        _condition(old, "MonitoringConfigured", *outcome.monitoring, generation, stamp),
        _condition(old, "Degraded", *degraded, generation, stamp),
        _condition(old, "FaultsActive", *faults_cond, generation, stamp),
        _condition(old, "DataDurable", *durability(spec), generation, stamp),
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


def events(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events a status change deserves.

    Warnings only for real problems: a failed render or apply, a missing Secret, a stuck rollout.
    A platform starting up, waiting for its Pods, paused by its owner or running a fault drill it
    asked for is reported as Normal. A recovery is Normal; a first True of a condition that was
    never False (SecretsResolved, Degraded=False at creation) says nothing new and is not posted.
    """
    before = {c["type"]: c["status"] for c in old.get("conditions") or []}
    out = []
    for c in new["conditions"]:
        ctype, value, reason, message = c["type"], c["status"], c["reason"], c.get("message", "")
        prev = before.get(ctype)
        if prev == value:
            continue
        if ctype == "Ready":
            problem = value == "False" and reason not in PROGRESSING
            out.append(("Warning" if problem else "Normal", reason, message))
        elif ctype == "Reconciled" and value == "False":
            out.append(("Normal" if reason == "Paused" else "Warning", reason, message))
        elif ctype == "SecretsResolved":
            if value == "False":
                out.append(("Warning", reason, message))
            elif prev == "False":
                out.append(("Normal", reason, message))
        elif ctype == "Degraded":
            if value == "True":
                out.append(("Warning", reason, message))
            elif prev == "True":
                out.append(("Normal", "Recovered", message))
        elif ctype == "FaultsActive" and (value == "True" or prev == "True"):
            out.append(("Normal", reason, message))
        elif ctype == "DataDurable" and value == "False":
            # A development platform on emptyDirs is a choice, not a fault: said once, as Normal.
            out.append(("Normal", reason, message))
    return out
