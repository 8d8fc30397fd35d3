"""Schema-driven fuzzing of every route of affiliates (the machinery of test_api_fuzz.py: valid and
invalid cases from its own OpenAPI document; never a 5xx, documented statuses and media types,
problem types the document lists). Affiliates runs on its own, without NATS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from test_api_fuzz import EXAMPLES, Target, _fuzz, _operations

from gameplane.affiliates.app import build_app
from gameplane.affiliates.settings import AffiliatesSettings
from gameplane.devtools import inprocess
from gameplane.devtools.testing import as_service, as_staff


@pytest.fixture(scope="module")
async def target(module_service_settings: Any) -> AsyncIterator[Target]:
    app = build_app(module_service_settings(AffiliatesSettings, nats_url=None, jurisdiction="ukgc"))
    sock = inprocess.listener()
    try:
        async with inprocess.served(app, sock) as url:
            async with httpx.AsyncClient(base_url=url, timeout=20) as http:
                # something to find: an affiliate with a link
                staff = as_staff(app, "finance")
                a = (await http.post("/internal/affiliates/affiliates", headers=staff, json={
                    "name": "fuzz", "deal": {"currency": "EUR", "cpa_amount": 100,
                                             "revshare": [{"from_ngr": 0, "basis_points": 2500}]}})).json()
                await http.post(f"/internal/affiliates/affiliates/{a['affiliate_id']}/links", headers=staff,
                                json={"landing_url": "https://casino.example/", "code": "fuzz-link"})
                doc = (await http.get("/openapi.json")).json()

            async def headers(method: str, path: str) -> dict[str, str]:
                if path.startswith("/v1/"):
                    return {**as_service(app, "gateway"), "X-Api-Key": a["api_key"]}
                return as_staff(app, "admin", "finance", "support")

            yield Target("affiliates", url, doc, headers)
    finally:
        sock.close()


async def test_fuzzed_affiliates_requests_get_documented_answers_and_never_a_5xx(target: Target) -> None:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=60, follow_redirects=False) as client:
        found = await asyncio.to_thread(_fuzz, target, loop, client)
    ops = {f"affiliates {op.method.upper()} {op.path}" for op in _operations(target.doc)}
    assert len(ops) >= 15 and ops == set(found.statuses), sorted(ops ^ set(found.statuses))
    assert found.sent >= len(ops) * EXAMPLES
    assert found.authenticated == ops, sorted(ops - found.authenticated)
    assert any(200 <= status < 300 for statuses in found.statuses.values() for status in statuses)
    report = "\n".join(f"{op} [{what}]\n    {detail}" for (op, what), detail in sorted(found.failures.items()))
    assert not found.failures, f"{len(found.failures)} findings over {found.sent} requests:\n{report}"
