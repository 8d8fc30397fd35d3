"""The operator's pure parts (no cluster): spec -> values, the no-op-write check, status, queue."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
from typing import Any

from gameplane_operator.desired import contains, prepare, up_to_date
from gameplane_operator.scheduler import Scheduler
from gameplane_operator.status import Outcome, WorkloadInfo, compute, transitions
from gameplane_operator.values import chart_values, enabled_services

KEYS = {"service-token-secret": "s", "player-token-secret": "p", "postgres-password": "pw"}
PLATFORM: dict[str, Any] = {
    "apiVersion": "gameplane.io/v1alpha1",
    "kind": "GamingPlatform",
    "metadata": {"name": "demo", "namespace": "casino", "uid": "u-1", "generation": 2},
    "spec": {"version": "0.1.0"},
}


def test_enabled_services_defaults_and_overrides() -> None:
    assert enabled_services({"version": "1.0.0"})[:2] == ["gateway", "players"]
    assert "rgs" not in enabled_services({})
    spec = {"services": [{"name": "rgs", "enabled": True}, {"name": "bonus", "enabled": False}]}
    names = enabled_services(spec)
    assert "rgs" in names and "bonus" not in names and len(names) == 10


def test_chart_values_map_the_spec() -> None:
    spec = {
        "version": "0.2.0",
        "size": "large",
        "services": [{"name": "games", "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5}},
                     {"name": "wallet", "replicas": 3}],
        "database": {"mode": "external", "external": {"secretRef": {"name": "db", "key": "dsn"}}},
        "messaging": {"mode": "external", "url": "nats://nats:4222"},
        "monitoring": {"labels": {"release": "prom"}},
        "faults": [{"scenario": "latency", "service": "bonus", "enabled": False}, {"scenario": "errors"}],
        "providers": [{"name": "acme", "baseUrl": "https://acme", "secretRef": {"name": "acme-keys"}}],
    }  # fmt: skip
    v = chart_values("demo", spec, KEYS)
    assert v["games"]["autoscaling"] == {"enabled": True, "minReplicas": 2, "maxReplicas": 5,
                                         "cpuTargetPercent": 70, "rpsTarget": 0}  # fmt: skip
    assert v["wallet"]["replicas"] == 3
    assert v["gateway"]["database"] == {"enabled": False} and v["gateway"]["exposed"] is True
    assert v["global"]["database"] == {"secretName": "db", "secretKey": "dsn"}
    assert v["global"]["natsUrl"] == "nats://nats:4222"
    assert v["postgres"] == {"enabled": False} and v["nats"] == {"enabled": False}
    assert v["global"]["faults"] == [{"scenario": "errors", "service": "", "ratio": "1"}]
    assert v["global"]["monitoring"]["labels"] == {"release": "prom"}
    assert v["games"]["providers"] == [{"name": "acme", "baseUrl": "https://acme", "secretName": "acme-keys"}]
    assert v["secrets"]["postgresPassword"] == ""  # no dev database, no password
    assert v["global"]["managedBy"] == "gameplane-operator"


def test_prepare_owns_and_hashes_and_turns_string_data_into_data() -> None:
    rendered = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-secrets"}, "stringData": {"k": "v"}}]
    (obj,) = prepare(rendered, PLATFORM)
    assert obj["data"] == {"k": base64.b64encode(b"v").decode()} and "stringData" not in obj
    assert obj["metadata"]["namespace"] == "casino"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert obj["metadata"]["labels"]["gameplane.io/platform"] == "demo"
    (again,) = prepare(rendered, PLATFORM)
    assert again == obj  # deterministic: the same render gives the same hash
    changed = copy.deepcopy(rendered)
    changed[0]["stringData"]["k"] = "w"
    assert prepare(changed, PLATFORM)[0]["metadata"]["annotations"] != obj["metadata"]["annotations"]


def test_up_to_date_ignores_server_defaults_but_sees_drift() -> None:
    want = prepare([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                     "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "ports": [
                         {"containerPort": 8000}]}]}}}}], PLATFORM)[0]  # fmt: skip
    live = copy.deepcopy(want)
    live["metadata"]["resourceVersion"] = "7"
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"  # defaulted
    live["status"] = {"readyReplicas": 2}
    assert up_to_date(live, want)
    live["spec"]["replicas"] = 5  # kubectl scale
    assert not up_to_date(live, want)
    assert not up_to_date(None, want)
    stale = copy.deepcopy(want)
    stale["metadata"]["annotations"]["gameplane.io/applied-hash"] = "old"
    assert not up_to_date(stale, want)  # a field may have been dropped from the render


def test_contains_treats_empty_as_absent_and_lists_strictly() -> None:
    assert contains({"a": 1}, {"a": 1, "b": {}})
    assert not contains({"a": [1, 2]}, {"a": [1]})
    assert not contains({"a": True}, {"a": "true"})
    assert contains({"port": 80}, {"port": 80})


def _status(workloads: dict[str, WorkloadInfo], outcome: Outcome | None = None, **kw: Any) -> dict[str, Any]:
    return compute(
        platform=kw.get("platform", PLATFORM), services=["gateway", "wallet"], workloads=workloads,
        autoscalers={}, endpoints={}, outcome=outcome or Outcome(True, "Applied", "9 objects in sync"),
        paused=kw.get("paused", False), dashboards=[], now=kw.get("now", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    )  # fmt: skip


def test_status_counts_ready_services_and_keeps_transition_times() -> None:
    ready = WorkloadInfo("gateway", "demo-gateway", 1, 1, 1, True, "")
    waiting = WorkloadInfo("wallet", "demo-wallet", 2, 1, 2, True, "")
    first = _status({"gateway": ready, "wallet": waiting})
    cond = {c["type"]: c for c in first["conditions"]}
    assert first["serviceSummary"] == "1/2" and cond["Ready"]["status"] == "False"
    assert "waiting for wallet" in cond["Ready"]["message"]
    later = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    second = _status({"gateway": ready, "wallet": waiting}, platform={**PLATFORM, "status": first}, now=later)
    assert second == first  # nothing changed: identical status, so no write
    done = WorkloadInfo("wallet", "demo-wallet", 2, 2, 2, True, "")
    third = _status({"gateway": ready, "wallet": done}, platform={**PLATFORM, "status": first}, now=later)
    assert ("Ready", "True", "AllServicesReady") in transitions(first, third)
    assert {c["type"]: c for c in third["conditions"]}["Ready"]["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_status_reports_failures_and_pause() -> None:
    stuck = WorkloadInfo("wallet", "demo-wallet", 1, 0, 1, True, "ProgressDeadlineExceeded")
    s = _status({"wallet": stuck}, Outcome(False, "ApplyFailed", "forbidden"))
    cond = {c["type"]: c for c in s["conditions"]}
    assert (cond["Ready"]["reason"], cond["Reconciled"]["status"]) == ("ApplyFailed", "False")
    assert cond["Degraded"]["status"] == "True" and "ProgressDeadlineExceeded" in cond["Degraded"]["message"]
    paused = {c["type"]: c for c in _status({}, paused=True)["conditions"]}
    assert paused["Reconciled"]["reason"] == "Paused"


async def test_scheduler_coalesces_nudges_and_bounds_workers() -> None:
    runs: list[tuple[tuple[str, str], bool]] = []
    active = peak = 0

    async def run(key: tuple[str, str], full: bool) -> bool:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        runs.append((key, full))
        return True

    sched = Scheduler(run, workers=2, debounce=0.02, resync=3600)
    for _ in range(20):  # a burst of events for one platform...
        sched.nudge(("ns", "a"), full=False)
    sched.nudge(("ns", "a"), full=True)
    for name in "bcde":  # ...and four more platforms
        sched.nudge(("ns", name))
    await asyncio.sleep(0.5)
    await sched.close()
    assert [r for r in runs if r[0] == ("ns", "a")] == [(("ns", "a"), True)]  # one run, and a full one
    assert len(runs) == 5 and peak == 2


def test_status_never_claims_a_generation_it_has_not_reconciled() -> None:
    ready = WorkloadInfo("gateway", "demo-gateway", 1, 1, 1, True, "")
    s = compute(platform=PLATFORM, services=["gateway"], workloads={"gateway": ready}, autoscalers={}, endpoints={},
                outcome=Outcome(True, "Applied", "ok"), paused=False, dashboards=[], observed_generation=1)  # fmt: skip
    assert s["observedGeneration"] == 1  # the platform is at generation 2: not reconciled yet
    assert {c["observedGeneration"] for c in s["conditions"]} == {1}
