"""Schema-driven fuzzing of every route of bonus (the machinery of test_api_fuzz.py: valid and
invalid cases from its own OpenAPI document; never a 5xx, documented statuses and media types,
problem types the document lists). Bonus runs on its own, its wallet and games unreachable (a
grant's calls stay owed, which is an answer, not an error)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from test_api_fuzz import EXAMPLES, Target, _fuzz, _operations

from gameplane.bonus.app import build_app
from gameplane.bonus.settings import BonusSettings
from gameplane.devtools import inprocess
from gameplane.devtools.testing import as_service, as_staff


def closed_url() -> str:
    sock = inprocess.listener()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def target(module_service_settings: Any) -> AsyncIterator[Target]:
    down = closed_url()
    app = build_app(module_service_settings(BonusSettings, nats_url=None, jurisdiction="ukgc",
                                            endpoints={"wallet": down, "games": down}))
    sock = inprocess.listener()
    try:
        async with inprocess.served(app, sock) as url:
            player = uuid.uuid4()
            async with httpx.AsyncClient(base_url=url, timeout=20) as http:
                # something to find: a live offer
                staff = as_staff(app, "finance")
                camp = (await http.post("/internal/bonus/campaigns", json={"name": "fuzz"}, headers=staff)).json()
                offer = (await http.post(f"/internal/bonus/campaigns/{camp['campaign_id']}/offers", headers=staff,
                                         json={"name": "fuzz", "kind": "no_deposit", "currency": "EUR",
                                               "amount": 100})).json()
                await http.post(f"/internal/bonus/offers/{offer['offer_id']}/publish", json={"version": 1},
                                headers=staff)
                doc = (await http.get("/openapi.json")).json()

            async def headers(method: str, path: str) -> dict[str, str]:
                if path.startswith("/v1/"):
                    return as_service(app, "gateway", player)
                return as_staff(app, "admin", "finance", "risk", "support")

            yield Target("bonus", url, doc, headers)
    finally:
        sock.close()


async def test_fuzzed_bonus_requests_get_documented_answers_and_never_a_5xx(target: Target) -> None:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=60) as client:
        found = await asyncio.to_thread(_fuzz, target, loop, client)
    ops = {f"bonus {op.method.upper()} {op.path}" for op in _operations(target.doc)}
    assert len(ops) >= 18 and ops == set(found.statuses), sorted(ops ^ set(found.statuses))
    assert found.sent >= len(ops) * EXAMPLES
    assert found.authenticated == ops, sorted(ops - found.authenticated)
    assert any(200 <= status < 300 for statuses in found.statuses.values() for status in statuses)
    report = "\n".join(f"{op} [{what}]\n    {detail}" for (op, what), detail in sorted(found.failures.items()))
    assert not found.failures, f"{len(found.failures)} findings over {found.sent} requests:\n{report}"
