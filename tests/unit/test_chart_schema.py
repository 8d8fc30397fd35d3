"""charts/gameplane/values.schema.json is exactly what hack/gen_chart_schema.py generates from the
service chart's schema and the catalogue: nobody edits 12 copies by hand, and none goes stale."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from gameplane import catalog

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    from hack import gen_chart_schema

    return gen_chart_schema


def test_committed_umbrella_schema_is_the_generated_one(gen: ModuleType) -> None:
    committed = (REPO / "charts" / "gameplane" / "values.schema.json").read_text()
    assert committed == gen.render(), "stale: run `python hack/gen_chart_schema.py` and commit the result"
    assert gen.main(["--check"]) == 0


def test_a_change_to_the_service_schema_makes_the_check_fail(
    gen: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = json.loads(gen.SERVICE_SCHEMA.read_text())
    schema["properties"]["replicas"]["maximum"] = 50
    changed = tmp_path / "values.schema.json"
    changed.write_text(json.dumps(schema))
    monkeypatch.setattr(gen, "SERVICE_SCHEMA", changed)
    assert gen.main(["--check"]) == 1
    rendered = json.loads(gen.render())
    assert {rendered["properties"][n]["properties"]["replicas"]["maximum"] for n in catalog.NAMES} == {50}


def test_each_block_is_the_service_chart_schema_with_name_fixed(gen: ModuleType) -> None:
    service = json.loads(gen.SERVICE_SCHEMA.read_text())
    umbrella = json.loads(gen.render())
    assert umbrella["definitions"] == service["definitions"]
    assert umbrella["properties"]["global"] == service["properties"]["global"]
    for svc in catalog.SERVICES:
        block = umbrella["properties"][svc.name]
        assert block["additionalProperties"] is False
        assert set(block["properties"]) == set(service["properties"])
        assert block["properties"]["name"]["const"] == svc.name
        assert block["properties"]["replicas"] == service["properties"]["replicas"]
        enabled = block["properties"]["enabled"]
        if svc.built:
            assert enabled["type"] == "boolean"
        else:
            assert enabled["const"] is False
            assert f"{svc.name} is not built in gameplane" in enabled["description"]
            assert "cannot be enabled yet" in enabled["description"]
