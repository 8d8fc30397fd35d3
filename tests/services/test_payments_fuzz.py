"""Schema-driven fuzzing of every payments route (player, webhook, back office) against the real
service with real wallet, players, Postgres and NATS behind it: never a 5xx, only documented
statuses and problem types (the checks and the runner are test_api_fuzz's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from paymentslib import payments_platform
from test_api_fuzz import EXAMPLES, Target, _fuzz, _operations

from gameplane.devtools.testing import as_service, as_staff


@pytest.fixture(scope="module")
async def target(module_service_settings: Any, nats_server: Any) -> AsyncIterator[Target]:
    async with payments_platform(module_service_settings, nats_server.url) as p:
        pid, _ = await p.funded(50_000)  # so valid withdrawals reach the rules behind validation
        doc = (await p.client.get("/openapi.json")).json()

        async def headers(method: str, path: str) -> dict[str, str]:
            if path.startswith("/internal/"):
                return as_staff(p.payments, "admin", "finance", "risk", "support")
            return as_service(p.payments, "gateway", pid)

        target = Target("payments", "http://service", doc, headers)
        target.app = p.payments  # type: ignore[attr-defined]
        yield target


async def test_fuzzed_payments_requests_get_documented_answers_and_never_a_5xx(target: Target) -> None:
    loop = asyncio.get_running_loop()
    transport = httpx.ASGITransport(app=target.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:
        found = await asyncio.to_thread(_fuzz, target, loop, client)
    ops = {f"payments {op.method.upper()} {op.path}" for op in _operations(target.doc)}
    assert ops and ops == set(found.statuses), sorted(ops ^ set(found.statuses))
    assert found.sent >= len(ops) * EXAMPLES
    assert any(200 <= s < 300 for statuses in found.statuses.values() for s in statuses)
    report = "\n".join(f"{op} [{what}]\n    {detail}" for (op, what), detail in sorted(found.failures.items()))
    assert not found.failures, f"{len(found.failures)} findings over {found.sent} requests:\n{report}"
