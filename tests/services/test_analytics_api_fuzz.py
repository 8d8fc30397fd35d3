"""Schema-driven fuzzing of every route of analytics (the machinery of test_api_fuzz.py: valid and
invalid cases from its own OpenAPI document; never a 5xx, documented statuses and media types,
problem types the document lists). Analytics runs on its own with games reachable, some facts to
find (a day of play published before the run)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from analyticslib import publish
from paymentslib import eventually
from test_api_fuzz import EXAMPLES, Target, _fuzz, _operations

from gameplane.analytics.app import build_app
from gameplane.analytics.settings import AnalyticsSettings
from gameplane.contracts.wallet import BetPlaced, WinSettled
from gameplane.devtools import inprocess
from gameplane.devtools.infra import EmbeddedPostgres, NatsServer
from gameplane.devtools.testing import as_staff
from gameplane.kit.events import Envelope


@pytest.fixture(scope="module")
async def target(module_service_settings: Any, pg: EmbeddedPostgres,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    own = NatsServer(Path(tmp_path_factory.mktemp("fuzz-nats")))
    own.start()
    dbs = {}
    for name in ("games", "wallet", "sessions"):
        db = f"fuzz_{name}_{uuid.uuid4().hex[:8]}"
        pg.create_database(db)
        dbs[name] = pg.dsn(db)
    try:
        async with inprocess.local_platform(dbs, own.url, provider_secret="analytics-fuzz-provider-secret") as local:
            app = build_app(module_service_settings(AnalyticsSettings, nats_url=own.url, endpoints=local.urls,
                                                    log_level="WARNING"))
            sock = inprocess.listener()
            try:
                async with inprocess.served(app, sock) as url:
                    pid, now = uuid.uuid4(), datetime.now(UTC)
                    await publish(own.url, *(Envelope.wrap(e, "wallet") for e in (
                        BetPlaced(transaction_id=uuid.uuid4(), player_id=pid, currency="EUR", amount=100, cash=100,
                                  bonus=0, occurred_at=now, round_id="r1", game_id="fruit-fives", provider="rgs"),
                        WinSettled(transaction_id=uuid.uuid4(), player_id=pid, currency="EUR", amount=50, cash=50,
                                   bonus=0, occurred_at=now, round_id="r1", game_id="fruit-fives", provider="rgs",
                                   round_closed=True))))
                    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
                        async def ingested() -> bool:
                            r = await http.get("/internal/analytics/kpis", headers=as_staff(app, "finance"),
                                               params={"from": now.date().isoformat(), "to": now.date().isoformat()})
                            return bool(r.json()["rows"])
                        await eventually(ingested, what="the round ingested")
                        doc = (await http.get("/openapi.json")).json()

                    async def headers(method: str, path: str) -> dict[str, str]:
                        return as_staff(app, "finance")

                    yield Target("analytics", url, doc, headers)
            finally:
                sock.close()
    finally:
        own.stop()


async def test_fuzzed_analytics_requests_get_documented_answers_and_never_a_5xx(target: Target) -> None:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=60) as client:
        found = await asyncio.to_thread(_fuzz, target, loop, client)
    ops = {f"analytics {op.method.upper()} {op.path}" for op in _operations(target.doc)}
    assert len(ops) == 2 and ops == set(found.statuses), sorted(ops ^ set(found.statuses))
    assert found.sent >= len(ops) * EXAMPLES
    assert found.authenticated == ops, sorted(ops - found.authenticated)
    assert any(200 <= status < 300 for statuses in found.statuses.values() for status in statuses)
    report = "\n".join(f"{op} [{what}]\n    {detail}" for (op, what), detail in sorted(found.failures.items()))
    assert not found.failures, f"{len(found.failures)} findings over {found.sent} requests:\n{report}"
