"""The offer's max stake reaches the wallet with the grant (its own copy: no call to bonus on a
bet), which refuses a larger bet while the player holds bonus money and moves nothing. Needs the
wallet's per-grant money (the `grants` work)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from bonuslib import BonusPlatform, bonus_platform


@pytest.fixture(scope="module")
async def bp(pg: Any, nats_server: Any) -> AsyncIterator[BonusPlatform]:
    async with bonus_platform(pg, nats_server.url) as p:
        yield p


async def bet(bp: BonusPlatform, pid: uuid.UUID, amount: int) -> httpx.Response:
    async with httpx.AsyncClient(base_url=bp.local.urls["wallet"], timeout=20) as http:
        return await http.post("/internal/wallet/bets", headers=bp.local.headers("wallet", caller="games"), json={
            "idempotency_key": f"bet-{uuid.uuid4()}", "player_id": str(pid), "currency": "EUR", "amount": amount,
            "round_id": f"r-{uuid.uuid4().hex[:8]}", "game_id": "fruit-fives", "provider": "rgs"})


async def test_a_bet_above_the_offers_max_stake_is_refused_and_moves_nothing(bp: BonusPlatform) -> None:
    pid = await bp.player(balance=10_000)
    assert (await bet(bp, pid, 600)).status_code == 200  # no bonus yet: no cap (negative control)
    g = (await bp.opt_in(pid, await bp.offer(amount=1000, max_stake=500)))["grant"]
    assert g["max_stake"] == 500
    before = await bp.balance(pid)
    refused = await bet(bp, pid, 600)
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/bonus-max-stake")
    assert (problem["max_stake"], problem["grant_id"]) == (500, g["grant_id"])
    assert await bp.balance(pid) == before
    assert (await bet(bp, pid, 500)).status_code == 200
    # once the grant is gone the cap goes with it
    await bp.call("POST", f"/internal/bonus/grants/{g['grant_id']}/cancel", json={"reason": "tests: lift the cap"})
    assert (await bet(bp, pid, 600)).status_code == 200


async def test_the_studio_sees_the_max_stake_refusal_with_the_balance(bp: BonusPlatform) -> None:
    pid = await bp.player(balance=10_000)
    await bp.opt_in(pid, await bp.offer(amount=1000, max_stake=500))
    studio = await bp.studio(pid)
    fields = {"round_id": f"r-{uuid.uuid4().hex[:8]}", "game_id": studio.game_id, "currency": "EUR"}
    refused = await studio.send("bet", transaction_id=uuid.uuid4().hex, amount=600, **fields)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "bonus-max-stake" and problem["balance"] == 10_000 + 1000, problem
    # the same round takes the allowed stake (negative control: the refusal is about the amount)
    assert (await studio.send("bet", transaction_id=uuid.uuid4().hex, amount=500, **fields)).status_code == 200
