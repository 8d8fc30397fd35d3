"""FaultsActive from what the Pods report, not from what the spec asks.

A drill is asked for in `spec.faults`; the services apply it (gameplane.kit.faults) once their
mounted settings file changes and report what they apply on /readyz (`faults`). The operator
reads that report from every running Pod of the services concerned through the API server's
Pod proxy (`pods/proxy` get: the only read of a workload's own endpoint the operator makes), and
only while a drill is asked for or was last seen applied: a platform without drills costs
nothing. The pure part (what is asked, what the condition says) is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Wanted = dict[str, frozenset[str]]  # service -> scenarios asked for it


@dataclass(frozen=True)
class PodReport:
    pod: str
    scenarios: frozenset[str] = frozenset()
    error: str = ""  # the Pod could not be asked (not serving yet, proxy refused ...)


@dataclass
class Observation:
    """What the Pods of each probed service report."""

    pods: dict[str, list[PodReport]] = field(default_factory=dict)


def wanted(spec: dict[str, Any], services: Iterable[str]) -> Wanted:
    """The enabled scenarios of `spec.faults` by service (an empty `service` means every one)."""
    enabled = list(services)
    out: dict[str, set[str]] = {}
    for f in spec.get("faults") or []:
        if not f.get("enabled", True):
            continue
        targets = enabled if not f.get("service") else [f["service"]]
        for svc in targets:
            out.setdefault(svc, set()).add(f["scenario"])
    return {svc: frozenset(s) for svc, s in out.items()}


def report_scenarios(body: dict[str, Any]) -> frozenset[str]:
    """The scenarios a service's /readyz body (ready or not) says it applies."""
    return frozenset(str(f["scenario"]) for f in body.get("faults") or [] if isinstance(f, dict) and "scenario" in f)


def condition(asked: Wanted, seen: Observation) -> tuple[bool, str, str, bool]:
    """(status, reason, message, settled) of FaultsActive. True only while some Pod reports a
    fault applied. `settled`: what the Pods report is what the spec asks, on every Pod (nothing
    left to wait for, so the operator may stop asking)."""
    applied: list[str] = []
    waiting: list[str] = []
    lingering: list[str] = []
    errors: list[str] = []
    for svc in sorted(set(asked) | set(seen.pods)):
        reports = seen.pods.get(svc, [])
        errors += [f"{r.pod}: {r.error}" for r in reports if r.error]
        answered = [r for r in reports if not r.error]
        for scenario in sorted(asked.get(svc, frozenset())):
            n = sum(1 for r in answered if scenario in r.scenarios)
            if n:
                applied.append(f"{scenario}@{svc} ({n}/{len(reports)} Pods)")
            if not reports or n < len(reports):
                waiting.append(f"{scenario}@{svc}")
        extra = sorted({s for r in answered for s in r.scenarios} - asked.get(svc, frozenset()))
        lingering += [f"{s}@{svc}" for s in extra]
    settled = not waiting and not lingering and not errors
    notes = []
    if waiting:
        notes.append("not yet applied: " + ", ".join(waiting))
    if lingering:
        notes.append("still applied though no longer asked: " + ", ".join(lingering))
    if errors:
        notes.append("not answering: " + "; ".join(errors[:5]))
    if applied or lingering:
        reason = "FaultsApplied" if settled else "FaultsPartlyApplied"
        parts = ([", ".join(applied)] if applied else []) + notes
        return True, reason, "; ".join(parts), settled
    if asked:
        return False, "FaultsPending", "; ".join(notes) or "no Pod reports the asked faults yet", False
    return False, "NoFaults", "no fault scenario is applied", settled


async def observe(kube: Any, namespace: str, platform: str, services: Iterable[str]) -> Observation:
    """Ask every running Pod of `services` (of this platform) what it applies."""
    seen = Observation()
    for svc in services:
        selector = f"app.kubernetes.io/name={svc},app.kubernetes.io/instance={platform}"
        reports = []
        for pod in await kube.list_pods(namespace, selector):
            meta, status = pod["metadata"], pod.get("status") or {}
            if meta.get("deletionTimestamp") or status.get("phase") != "Running":
                continue
            try:
                body = await kube.pod_get(namespace, meta["name"], PROBE_PORT, PROBE_PATH)
                reports.append(PodReport(meta["name"], report_scenarios(body)))
            except Exception as exc:  # not serving yet, or the proxy refused: report it, retry later
                reports.append(PodReport(meta["name"], error=f"{type(exc).__name__}: {str(exc)[:120]}"))
        seen.pods[svc] = reports
    return seen


PROBE_PORT = 8000  # every service's container port (`http`)
PROBE_PATH = "readyz"
