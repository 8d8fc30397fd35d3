"""observability/otel/collector.yaml: what the OpenTelemetry Collector checks at start-up (every
component a pipeline names is configured, every configured one is known), and what the platform
relies on (the OTLP ports the services send to, memory_limiter first, the backend from the
environment). No collector binary is built here: a typo that the collector would reject at start
must fail this test instead."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "observability/otel/collector.yaml"
SECTIONS = {"receivers": "receivers", "processors": "processors", "exporters": "exporters"}
# component types (the part before "/") of the core and contrib distributions that this file may use
KNOWN = {"receivers": {"otlp"}, "processors": {"batch", "memory_limiter"},
         "exporters": {"otlp", "otlphttp", "debug"}, "extensions": {"health_check"}}


def problems(config: dict[str, Any]) -> list[str]:
    out = []
    for section, known in KNOWN.items():
        for name in config.get(section) or {}:
            if name.split("/")[0] not in known:
                out.append(f"unknown {section[:-1]} type {name!r}")
    service = config.get("service") or {}
    for ext in service.get("extensions") or []:
        if ext not in (config.get("extensions") or {}):
            out.append(f"service.extensions names {ext!r}, which is not configured")
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        out.append("no pipelines")
    for pname, pipeline in pipelines.items():
        for key, section in SECTIONS.items():
            names = pipeline.get(key) or []
            if key != "processors" and not names:
                out.append(f"pipeline {pname} has no {key}")
            for name in names:
                if name not in (config.get(section) or {}):
                    out.append(f"pipeline {pname} names {section[:-1]} {name!r}, which is not configured")
        processors = pipeline.get("processors") or []
        if "memory_limiter" in processors and processors[0] != "memory_limiter":
            out.append(f"pipeline {pname}: memory_limiter must come first")
    return out


def load() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())  # type: ignore[no-any-return]


def test_every_component_a_pipeline_names_is_configured_and_known() -> None:
    assert problems(load()) == []


def test_the_check_reports_a_dangling_reference_and_an_unknown_type() -> None:
    """Negative control: the same file with an exporter the pipeline names removed, and a typo'd type."""
    broken = copy.deepcopy(load())
    del broken["exporters"]["otlp/backend"]
    broken["processors"]["bacth"] = {}
    broken["service"]["pipelines"]["traces"]["processors"] = ["batch", "memory_limiter"]
    assert sorted(problems(broken)) == [
        "pipeline traces names exporter 'otlp/backend', which is not configured",
        "pipeline traces: memory_limiter must come first",
        "unknown processor type 'bacth'",
    ]


def test_the_traces_pipeline_takes_otlp_on_both_ports_and_sends_to_the_backend_from_the_environment() -> None:
    config = load()
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"] == ["memory_limiter", "batch"]
    protocols = config["receivers"]["otlp"]["protocols"]
    # 4318: where the services send (OTLP/HTTP, kit.telemetry); 4317: gRPC senders
    assert protocols["http"]["endpoint"].endswith(":4318") and protocols["grpc"]["endpoint"].endswith(":4317")
    exporters = [config["exporters"][name] for name in traces["exporters"]]
    assert [e["endpoint"] for e in exporters] == ["${env:TRACING_BACKEND_ENDPOINT}"]
    # the debug exporter is there to switch on, commented, never in the pipeline
    assert "debug" not in config["exporters"] and re.search(r"^\s*#\s*debug:", CONFIG.read_text(), re.M)
