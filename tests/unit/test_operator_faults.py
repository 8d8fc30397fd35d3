"""FaultsActive says what the Pods report, never what the spec asks alone."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gameplane_operator.faults import Observation, PodReport, condition, report_scenarios, wanted
from gameplane_operator.status import Outcome, compute
from gameplane_operator.values import chart_values

KEYS = {"service-token-secret": "s" * 40, "player-token-secret": "p" * 40, "postgres-password": "pw"}


def _seen(**pods: list[PodReport]) -> Observation:
    return Observation(pods=dict(pods))


def test_wanted_expands_an_empty_service_to_every_enabled_one_and_skips_disabled_entries() -> None:
    spec = {"faults": [{"scenario": "latency", "service": "games"}, {"scenario": "errors", "service": ""},
                       {"scenario": "unavailable", "service": "sessions", "enabled": False}]}
    asked = wanted(spec, ["gateway", "games"])
    assert asked == {"games": frozenset({"latency", "errors"}), "gateway": frozenset({"errors"})}
    assert wanted({}, ["games"]) == {} and wanted({"faults": []}, ["games"]) == {}


def test_report_scenarios_reads_ready_and_not_ready_bodies() -> None:
    ready = {"status": "ok", "faults": [{"scenario": "latency", "ratio": 1.0, "injected": 3}]}
    unready = {"type": "https://gameplane.io/problems/not-ready", "faults": [{"scenario": "unavailable"}]}
    assert report_scenarios(ready) == {"latency"} and report_scenarios(unready) == {"unavailable"}
    assert report_scenarios({"status": "ok"}) == frozenset()  # an older service that reports nothing


def test_asked_but_not_reported_is_pending_not_active() -> None:
    asked = {"games": frozenset({"latency"})}
    status, reason, message, settled = condition(asked, _seen(games=[PodReport("games-1")]))
    assert (status, reason, settled) == (False, "FaultsPending", False)
    assert "latency@games" in message


def test_reported_on_every_pod_as_asked_is_active_and_settled() -> None:
    asked = {"games": frozenset({"latency"})}
    seen = _seen(games=[PodReport("g-1", frozenset({"latency"})), PodReport("g-2", frozenset({"latency"}))],
                 wallet=[PodReport("w-1")])
    status, reason, message, settled = condition(asked, seen)
    assert (status, reason, settled) == (True, "FaultsApplied", True)
    assert message == "latency@games (2/2 Pods)"


def test_one_pod_of_two_is_partly_applied_and_not_settled() -> None:
    asked = {"games": frozenset({"latency"})}
    seen = _seen(games=[PodReport("g-1", frozenset({"latency"})), PodReport("g-2")])
    status, reason, message, settled = condition(asked, seen)
    assert (status, reason, settled) == (True, "FaultsPartlyApplied", False)
    assert "latency@games (1/2 Pods)" in message and "not yet applied" in message


def test_still_reported_after_the_drill_ended_stays_active_until_the_pods_stop() -> None:
    status, reason, message, settled = condition({}, _seen(games=[PodReport("g-1", frozenset({"latency"}))]))
    assert (status, reason, settled) == (True, "FaultsPartlyApplied", False)
    assert "still applied" in message
    assert condition({}, _seen(games=[PodReport("g-1")]))[:2] == (False, "NoFaults")


def test_a_pod_that_does_not_answer_keeps_the_condition_unsettled() -> None:
    asked = {"games": frozenset({"errors"})}
    seen = _seen(games=[PodReport("g-1", frozenset({"errors"})), PodReport("g-2", error="ApiException: 503")])
    status, _, message, settled = condition(asked, seen)
    assert status and not settled and "g-2" in message


def _platform(faults: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "n", "generation": 1},
            "spec": {"version": "0.1.0", "faults": faults}}


def _faults_active(platform: dict[str, Any], faults: tuple[bool, str, str] | None) -> dict[str, Any]:
    status = compute(platform=platform, services=[], workloads={}, autoscalers={}, endpoints={},
                     outcome=Outcome(True, "Applied", "ok"), paused=False, dashboards=[], faults=faults,
                     now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    return next(c for c in status["conditions"] if c["type"] == "FaultsActive")


def test_status_never_says_active_on_the_specs_word_alone() -> None:
    asked = _platform([{"scenario": "latency", "service": "games"}])
    assert _faults_active(asked, None)["status"] == "False"
    assert _faults_active(asked, None)["reason"] == "FaultsPending"
    applied = _faults_active(asked, (True, "FaultsApplied", "latency@games (1/1 Pods)"))
    assert (applied["status"], applied["reason"]) == ("True", "FaultsApplied")
    assert _faults_active(_platform([]), None)["reason"] == "NoFaults"


def test_chart_values_carry_latency_and_the_nats_volume() -> None:
    spec = {"version": "0.1.0", "faults": [{"scenario": "latency", "service": "games", "latencyMs": 400}],
            "messaging": {"mode": "embedded", "embedded": {"storageSize": "2Gi"}}}
    v = chart_values("p", spec, KEYS)
    assert v["global"]["faults"] == [{"scenario": "latency", "service": "games", "ratio": "1", "latencyMs": 400}]
    assert v["nats"]["storageSize"] == "2Gi"
    # Like the development PostgreSQL: no volume unless the spec sizes one.
    assert chart_values("p", {"version": "0.1.0"}, KEYS)["nats"]["storageSize"] == ""
