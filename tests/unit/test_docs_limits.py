"""docs/api/limits.md states every limit of the public API; this reads its tables and holds each
row equal to what the platform really enforces: the gateway's settings, the wallet's per-currency
amount bounds, and the bounds in each service's own OpenAPI document (built from the same models
that validate requests)."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from gameplane.gateway.settings import GatewaySettings
from gameplane.kit.money import CURRENCY_EXPONENTS, max_amount

DOC = Path(__file__).resolve().parents[2] / "docs" / "api" / "limits.md"


def _table(heading: str) -> list[list[str]]:
    """The rows (cells stripped of backticks) of the first table under `## heading`."""
    text = DOC.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip().strip("`") for c in row.strip("|").split("|")] for row in rows[2:]]


@cache
def _openapi(service: str) -> dict[str, Any]:
    import importlib

    app_module = importlib.import_module(f"gameplane.{service}.app")
    settings_module = importlib.import_module(f"gameplane.{service}.settings")
    settings_cls = next(v for k, v in vars(settings_module).items()
                        if k.endswith("Settings") and getattr(v, "service_name", None) == service)
    app = app_module.build_app(settings_cls(database_url="postgresql+asyncpg://doc@127.0.0.1/doc", nats_url=None))
    return app.openapi()  # type: ignore[no-any-return]


def _bound(service: str, route: str, field: str, keyword: str) -> Any:
    """`keyword` (maxLength, maximum) of a body field or query parameter of an operation."""
    doc = _openapi(service)
    method, path = route.split(" ", 1)
    op = doc["paths"][path][method.lower()]
    for param in op.get("parameters", []):
        if param["name"] == field:
            return _find(param["schema"], keyword)
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return _find(schema["properties"][field], keyword)


def _find(schema: dict[str, Any], keyword: str) -> Any:
    if keyword in schema:
        return schema[keyword]
    found = [s[keyword] for s in schema.get("anyOf", []) if keyword in s]
    assert found, f"no {keyword} in {schema}"
    return found[0]


def test_the_tables_are_there() -> None:
    # negative control: an empty or renamed section would make every check below pass vacuously
    assert len(_table("Request size and rate")) >= 5
    assert len(_table("Amounts")) == len(CURRENCY_EXPONENTS)
    assert len(_table("Text")) >= 15 and len(_table("Numbers")) >= 5


@pytest.mark.parametrize("row", _table("Request size and rate"), ids=lambda r: r[0])
def test_gateway_limits_are_its_settings_defaults(row: list[str]) -> None:
    setting, default = row[0], row[1]
    field = setting.removeprefix("GP_GATEWAY_").lower()
    assert float(default) == GatewaySettings.model_fields[field].default


def test_every_currency_has_its_amount_bound_stated() -> None:
    rows = _table("Amounts")
    assert [r[0] for r in rows] == list(CURRENCY_EXPONENTS)
    for currency, exp, minor, major in rows:
        assert int(exp) == CURRENCY_EXPONENTS[currency], currency
        assert int(minor.replace(",", "")) == max_amount(currency), currency
        assert Decimal(major.replace(",", "")) == Decimal(max_amount(currency)).scaleb(-int(exp)), currency


@pytest.mark.parametrize("row", _table("Text"), ids=lambda r: f"{r[1]} {r[2]}")
def test_string_lengths_are_what_the_routes_enforce(row: list[str]) -> None:
    service, route, field, most = row
    assert _bound(service, route, field, "maxLength") == int(most)


@pytest.mark.parametrize("row", _table("Numbers"), ids=lambda r: f"{r[1]} {r[2]}")
def test_number_bounds_are_what_the_routes_enforce(row: list[str]) -> None:
    service, route, field, most = row
    assert _bound(service, route, field, "maximum") == int(most)


def test_every_public_string_and_number_is_bounded_in_the_table() -> None:
    """The other direction: no public body string without a maxLength or number without a maximum
    escapes the tables (formats with their own shape — dates, uuids, enums, patterns — aside)."""
    stated = {(r[0], r[1], r[2]) for r in _table("Text") + _table("Numbers")}
    missing = []
    for service in ("players", "sessions", "games", "wallet"):
        doc = _openapi(service)
        for path, item in doc["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for method, op in item.items():
                route = f"{method.upper()} {path}"
                fields = {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"}
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                if body:
                    fields.update(doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["properties"])
                for name, schema in fields.items():
                    kinds = [schema, *schema.get("anyOf", [])]
                    shaped = any(k.get("enum") or k.get("format") or k.get("pattern") or "$ref" in k or "const" in k
                                 for k in kinds)
                    if any(k.get("type") in ("string", "integer") for k in kinds) and not shaped \
                            and (service, route, name) not in stated and not _is_money(service, route, name):
                        missing.append(f"{service} {route} {name}")
    assert missing == [], "\n".join(missing)


def _is_money(service: str, route: str, name: str) -> bool:
    # amounts are stated per currency in their own table
    return name in ("amount",) or (service, route, name) == ("players", "PUT /v1/players/me/limits", "value")


def test_the_amount_bound_of_a_player_limit_is_the_largest_currency_bound() -> None:
    assert _bound("players", "PUT /v1/players/me/limits", "value", "maximum") == max(
        int(r[2].replace(",", "")) for r in _table("Amounts"))


def test_no_table_row_names_an_unknown_route() -> None:
    for row in _table("Text") + _table("Numbers"):
        method, path = row[1].split(" ", 1)
        assert method.lower() in _openapi(row[0])["paths"].get(path, {}), row
    assert re.search(r"U\+0000", DOC.read_text())
