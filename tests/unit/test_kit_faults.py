"""Fault drill rules (gameplane.kit.faults): which settings are applied and to what share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gameplane.kit.faults import DEFAULT_LATENCY_MS, Faults, parse


def _gauge(service: str, scenario: str) -> float | None:
    return REGISTRY.get_sample_value("gameplane_fault_active", {"service": service, "scenario": scenario})


def test_parse_reads_the_chart_form_with_string_ratios():
    settings = parse('[{"scenario": "latency", "ratio": "0.25", "latencyMs": 400}, {"scenario": "errors"}]')
    by = {s.scenario: s for s in settings}
    assert by["latency"].ratio == 0.25 and by["latency"].latency_ms == 400
    assert by["errors"].ratio == 1.0
    assert parse('[{"scenario": "latency"}]')[0].latency_ms == DEFAULT_LATENCY_MS


def test_parse_skips_unknown_or_invalid_entries_instead_of_failing_the_service():
    settings = parse([{"scenario": "nats-outage"}, {"scenario": "errors", "ratio": "2"}, {"scenario": "unavailable"}])
    assert [s.scenario for s in settings] == ["unavailable"]
    assert parse(None) == [] and parse("") == [] and parse("[]") == []
    with pytest.raises(ValueError):
        parse('{"scenario": "latency"}')  # not a list


@pytest.mark.parametrize(("ratio", "calls", "hits"), [(1.0, 10, 10), (0.5, 10, 5), (0.25, 12, 3), (0.1, 30, 3),
                                                       (0.0, 10, 0), (0.3, 10, 3)])
def test_ratio_hits_exactly_that_share_of_occurrences(ratio: float, calls: int, hits: int):
    faults = Faults("unit-ratio", parse([{"scenario": "errors", "ratio": ratio}]))
    got = [faults.hit("errors") for _ in range(calls)]
    assert sum(got) == hits
    assert faults.injected["errors"] == hits


def test_half_ratio_alternates_rather_than_bunching():
    faults = Faults("unit-alternate", parse([{"scenario": "latency", "ratio": "0.5"}]))
    assert [faults.hit("latency") for _ in range(6)] == [0, 1, 0, 1, 0, 1]


def test_inactive_scenario_hits_nothing_and_counts_nothing():
    faults = Faults("unit-inactive", parse([{"scenario": "latency"}]))
    assert faults.hit("errors", 5) == 0 and faults.hit("drop-events", 5) == 0
    assert faults.injected["errors"] == 0 and not faults.unavailable


def test_report_and_gauge_follow_what_is_applied():
    faults = Faults("unit-report", parse([{"scenario": "latency", "ratio": "1", "latencyMs": 120}]))
    faults.hit("latency", 3)
    assert faults.report() == [{"scenario": "latency", "ratio": 1.0, "injected": 3, "latencyMs": 120}]
    assert _gauge("unit-report", "latency") == 1 and _gauge("unit-report", "errors") == 0
    faults.set([])
    assert faults.report() == [] and _gauge("unit-report", "latency") == 0


def test_settings_file_replaces_the_environment_and_is_re_read(tmp_path: Path):
    path = tmp_path / "faults.json"
    faults = Faults("unit-file", parse([{"scenario": "errors"}]), file=path)
    assert set(faults.active) == {"errors"}  # no file yet: the environment's settings
    path.write_text(json.dumps([{"scenario": "unavailable"}]))
    faults.reload()
    assert set(faults.active) == {"unavailable"} and faults.unavailable
    path.write_text("[]")
    faults.reload()
    assert faults.active == {}
    path.write_text("not json")
    faults.reload()  # an unreadable file keeps the last good settings
    assert faults.active == {}


async def test_gate_answers_a_problem_for_errors_and_leaves_health_routes_alone():
    faults = Faults("unit-gate", parse([{"scenario": "errors"}]))
    served: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        served.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def call(path: str) -> tuple[int, bytes, dict[bytes, bytes]]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await faults.gate(app, {"type": "http", "path": path, "method": "GET"}, None, send)
        return sent[0]["status"], sent[1]["body"], dict(sent[0]["headers"])

    status, body, headers = await call("/v1/games")
    assert status == 500 and headers[b"content-type"] == b"application/problem+json"
    assert json.loads(body)["type"] == "https://gameplane.io/problems/fault-injected"
    assert served == []  # refused without running the route
    assert (await call("/readyz"))[0] == 200 and (await call("/livez"))[0] == 200
    faults.set([])
    assert (await call("/v1/games"))[0] == 200  # negative control: off means served
    assert served == ["/readyz", "/livez", "/v1/games"]


def test_the_crd_and_the_chart_offer_exactly_the_scenarios_the_services_apply():
    import yaml

    from gameplane.kit.faults import SCENARIOS

    repo = Path(__file__).resolve().parents[2]
    crd = yaml.safe_load((repo / "k8s" / "crds" / "gamingplatforms.gameplane.io.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    item = spec["properties"]["faults"]["items"]["properties"]
    assert item["scenario"]["enum"] == list(SCENARIOS)
    chart = json.loads((repo / "charts" / "gameplane-service" / "values.schema.json").read_text())
    faults = chart["properties"]["global"]["properties"]["faults"]["items"]["properties"]
    assert faults["scenario"]["enum"] == list(SCENARIOS)
    # The chart's ratio and latency bounds are the CRD's.
    assert faults["ratio"]["pattern"] == item["ratio"]["pattern"]
    assert (faults["latencyMs"]["minimum"], faults["latencyMs"]["maximum"]) == (
        item["latencyMs"]["minimum"], item["latencyMs"]["maximum"])
