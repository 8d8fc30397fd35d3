"""The catalogue of services (gameplane.catalog) agrees with every other place that lists services.

Each check compares the catalogue with an independent source, written by hand or by another tool:
the Python modules that exist, the umbrella chart's values, Chart.yaml and helper, the service
chart's schema, the CRD's enums and CEL rules, and the operator's defaults compared with the
chart's (never the catalogue with something computed from the catalogue itself).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import gameplane
from gameplane import catalog
from gameplane_operator.values import Defaults, chart_values, enabled_services

REPO = Path(__file__).resolve().parents[2]
UMBRELLA = REPO / "charts" / "gameplane"
CRD = REPO / "k8s" / "crds" / "gamingplatforms.gameplane.io.yaml"
KEYS = {"postgres-password": "pw"}


def _has_main(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except ModuleNotFoundError:  # the package itself does not exist
        return False


def _runnable() -> list[str]:
    """The services whose code exists, found on disk rather than in the catalogue's `built` flag."""
    return [s.name for s in catalog.SERVICES if _has_main(s.module)]


# -- (a) the code ---------------------------------------------------------------------------------
@pytest.mark.parametrize("svc", catalog.SERVICES, ids=catalog.NAMES)
def test_built_means_the_module_exists(svc: catalog.Service) -> None:
    assert _has_main(svc.module) is svc.built, (
        f"{svc.name}: catalogue says built={svc.built}, but {svc.module}.__main__ "
        f"{'exists' if not svc.built else 'does not exist'}"
    )


def test_ports_and_names_are_unique() -> None:
    assert len(set(catalog.NAMES)) == len(catalog.NAMES)
    assert len(set(catalog.PORT_OFFSETS)) == len(catalog.PORT_OFFSETS)
    assert all(c in catalog.NAMES for s in catalog.SERVICES for c in s.calls)


# -- (b) the charts ---------------------------------------------------------------------------------
def _umbrella_values() -> dict[str, Any]:
    return yaml.safe_load((UMBRELLA / "values.yaml").read_text())


def test_umbrella_values_have_one_block_per_service_with_the_right_defaults() -> None:
    values = _umbrella_values()
    blocks = [k for k, v in values.items() if isinstance(v, dict) and "name" in v]
    assert blocks == list(catalog.NAMES)
    runnable = set(_runnable())
    for name in blocks:
        block, svc = values[name], catalog.get(name)
        assert block["name"] == name
        # Enabled by default: what runs and is a service (the service chart's default is true).
        enabled = block.get("enabled", True)
        assert enabled is (name in runnable and svc.kind == "service"), name
        assert block.get("database", {}).get("enabled", True) is svc.database, name
        assert "module" not in block  # the image's launcher finds the module from the name


def test_umbrella_chart_dependencies_and_helper_list_every_service() -> None:
    chart = yaml.safe_load((UMBRELLA / "Chart.yaml").read_text())
    deps = chart["dependencies"]
    assert [d["alias"] for d in deps] == list(catalog.NAMES)
    assert all(d["name"] == "gameplane-service" and d["condition"] == f"{d['alias']}.enabled" for d in deps)
    helpers = (UMBRELLA / "templates" / "_helpers.tpl").read_text()
    match = re.search(r'define "gpu\.serviceNames" -}}\s*\n(.+?)\n', helpers)
    assert match, "gpu.serviceNames not found"
    assert match.group(1).split() == list(catalog.NAMES)


def test_service_chart_schema_names_every_service() -> None:
    schema = json.loads((REPO / "charts" / "gameplane-service" / "values.schema.json").read_text())
    assert schema["properties"]["name"]["enum"] == list(catalog.NAMES)


def test_umbrella_schema_refuses_exactly_the_services_without_code() -> None:
    schema = json.loads((UMBRELLA / "values.schema.json").read_text())
    refused = [n for n in catalog.NAMES if schema["properties"][n]["properties"]["enabled"].get("const") is False]
    assert refused == [n for n in catalog.NAMES if n not in _runnable()]


# -- (c) the CRD ------------------------------------------------------------------------------------
def _crd_schema() -> dict[str, Any]:
    return yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _cel_list(rule: str, before: str) -> list[str]:
    """The list literal that follows `before` (a regular expression) in a CEL rule."""
    match = re.search(before + r"\s*\[([^\]]*)\]", rule)
    assert match, f"no list after {before!r} in {rule!r}"
    return [item.strip().strip("'\"") for item in match.group(1).split(",") if item.strip()]


def test_crd_enums_list_every_service() -> None:
    spec = _crd_schema()["properties"]["spec"]["properties"]
    assert spec["services"]["items"]["properties"]["name"]["enum"] == list(catalog.NAMES)
    assert spec["faults"]["items"]["properties"]["service"]["enum"] == ["", *catalog.NAMES]


def test_crd_refuses_enabling_exactly_the_services_without_code() -> None:
    item = _crd_schema()["properties"]["spec"]["properties"]["services"]["items"]
    (rule,) = [r for r in item["x-kubernetes-validations"] if "not built" in r.get("messageExpression", "")]
    assert _cel_list(rule["rule"], r"self\.name in") == [n for n in catalog.NAMES if n not in _runnable()]
    # The release named in the message is this one.
    assert f"not built in gameplane {gameplane.__version__} " in rule["messageExpression"]
    chart = yaml.safe_load((UMBRELLA / "Chart.yaml").read_text())
    assert chart["appVersion"] == gameplane.__version__


def test_crd_fault_rule_knows_unbuilt_services_and_simulators() -> None:
    spec = _crd_schema()["properties"]["spec"]
    (rule,) = [r["rule"] for r in spec["x-kubernetes-validations"] if "self.faults" in r["rule"]]
    assert _cel_list(rule, r"!\(f\.service in") == [n for n in catalog.NAMES if n not in _runnable()]
    assert _cel_list(rule, r"(?<!!)\(f\.service in") == [s.name for s in catalog.SERVICES if s.kind == "simulator"]


# -- (d) the operator -------------------------------------------------------------------------------
def test_operator_defaults_match_the_charts_defaults() -> None:
    umbrella = _umbrella_values()
    chart_default = [n for n in catalog.NAMES if umbrella[n].get("enabled", True)]
    assert enabled_services({"version": "0.1.0"}) == chart_default
    values = chart_values("demo", {"version": "0.1.0"}, KEYS, Defaults())
    assert [n for n in catalog.NAMES if values[n]["enabled"]] == chart_default
    # Stateless services tell the chart so, as values.yaml does for them.
    stateless = [n for n in catalog.NAMES if umbrella[n].get("database", {}).get("enabled", True) is False]
    assert [n for n in catalog.NAMES if values[n].get("database") == {"enabled": False}] == stateless


def test_the_operator_never_enables_code_that_does_not_exist() -> None:
    every = {"version": "0.1.0", "services": [{"name": n, "enabled": True} for n in catalog.NAMES]}
    assert enabled_services(every) == _runnable()
