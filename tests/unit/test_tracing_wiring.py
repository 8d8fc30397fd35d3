"""The OTLP endpoint and the sampling ratio, from a GamingPlatform's spec.monitoring.tracing through
the operator's values and the real `helm template` of the umbrella chart to each service's
environment, read back by the services' own settings. Default: 1 % of the traces."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import helm

from gameplane import catalog
from gameplane.kit.settings import ServiceSettings, settings_config
from gameplane_operator.values import chart_values

REPO = Path(__file__).resolve().parents[2]
KEYS = {"service-token-secret": "s" * 32, "player-token-secret": "p" * 32, "postgres-password": "pw"}
COLLECTOR = "http://otel-collector.monitoring.svc:4318"


def rendered_env(spec: dict[str, Any], tmp_path: Path) -> dict[str, dict[str, str]]:
    """Each enabled service's ConfigMap data, rendered from what the operator makes of `spec`."""
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(chart_values("p", {"version": "0.1.0", **spec}, KEYS)))
    out = subprocess.run([str(helm()), "template", "p", "charts/gameplane", "-n", "casino", "-f", str(values)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    return {d["metadata"]["name"].removeprefix("p-"): d["data"] for d in docs
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].removeprefix("p-") in catalog.BUILT}


def settings_of(service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    class Settings(ServiceSettings):
        model_config = settings_config(service)

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_the_operator_maps_spec_monitoring_tracing_to_global_tracing() -> None:
    spec = {"version": "0.1.0", "monitoring": {"tracing": {"endpoint": COLLECTOR, "samplingRatio": 0.25}}}
    assert chart_values("demo", spec, KEYS)["global"]["tracing"] == {"endpoint": COLLECTOR, "samplingRatio": 0.25}
    # a platform without the block: no endpoint, and the 1 % default should one be added later
    assert chart_values("demo", {"version": "0.1.0"}, KEYS)["global"]["tracing"] == {"endpoint": "",
                                                                                       "samplingRatio": 0.01}


def test_the_crd_offers_the_block_with_a_one_percent_default() -> None:
    crd = yaml.safe_load((REPO / "k8s/crds/gamingplatforms.gameplane.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    tracing = schema["properties"]["monitoring"]["properties"]["tracing"]
    assert set(tracing["properties"]) == {"endpoint", "samplingRatio"}
    ratio = tracing["properties"]["samplingRatio"]
    assert (ratio["type"], ratio["minimum"], ratio["maximum"], ratio["default"]) == ("number", 0, 1, 0.01)
    assert all(p.get("description") for p in tracing["properties"].values()) and tracing["description"]


def test_every_service_gets_the_endpoint_and_ratio_from_the_spec(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    env = rendered_env({"monitoring": {"tracing": {"endpoint": COLLECTOR, "samplingRatio": 0.05}}}, tmp_path)
    assert "wallet" in env and "gateway" in env
    for service, data in env.items():
        prefix = f"GP_{service.upper()}_"
        assert data[prefix + "OTLP_ENDPOINT"] == COLLECTOR, service
        settings = settings_of(service, data, monkeypatch)
        assert (settings.otlp_endpoint, settings.trace_sampling_ratio) == (COLLECTOR, 0.05), service


def test_the_default_is_one_percent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = rendered_env({"monitoring": {"tracing": {"endpoint": COLLECTOR}}}, tmp_path)
    assert {data["GP_WALLET_TRACE_SAMPLING_RATIO"] for name, data in env.items() if name == "wallet"} == {"0.01"}
    assert settings_of("games", env["games"], monkeypatch).trace_sampling_ratio == 0.01


def test_without_an_endpoint_the_services_get_neither(tmp_path: Path) -> None:
    env = rendered_env({}, tmp_path)
    assert env, "no service ConfigMap rendered"  # the check below must look at something
    assert [(s, k) for s, data in env.items() for k in data if "OTLP" in k or "SAMPLING" in k] == []


def test_the_charts_own_defaults_are_no_endpoint_and_one_percent() -> None:
    """For a release installed with helm alone, without the operator."""
    for chart in ("charts/gameplane", "charts/gameplane-service"):
        values = yaml.safe_load((REPO / chart / "values.yaml").read_text())
        assert values["global"]["tracing"] == {"endpoint": "", "samplingRatio": 0.01}, chart
