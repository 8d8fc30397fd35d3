"""A statement from the real wallet's events agrees with the wallet's ledger: a referred player
deposits, takes a bonus, plays cash and bonus money, has a bet rolled back and converts the rest
of the bonus, all through the wallet's internal API; the affiliate's open statement then shows
the GGR the house accounts moved and the bonus cost the player's bonus account and the
bonus_cost account moved for that player, read in this test straight from the ledger's entries
(and, for the record, the figures worked out by hand)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from affiliateslib import Affiliates, affiliates_app, eventually
from sqlalchemy import text
from walletlib import Wallet

from gameplane.devtools.testing import ManualClock, running
from gameplane.kit.db import utcnow
from gameplane.wallet.app import build_app as build_wallet
from gameplane.wallet.settings import WalletSettings

# house entries of the player's transactions: + stakes, − wins (a rollback mirrors its bet)
LEDGER_GGR = text(
    "SELECT COALESCE(SUM(e.amount), 0) FROM entries e JOIN accounts a ON a.id = e.account_id "
    "JOIN transactions t ON t.id = e.transaction_id "
    "WHERE a.owner = 'platform' AND a.kind = 'house' AND t.player_id = :p AND t.currency = 'EUR'")
# bonus money lost to the house in play (what left the player's bonus account in transactions that
# touched the house) plus what the bonus_cost account paid out for the player (conversions)
LEDGER_BONUS_COST = text(
    "SELECT COALESCE(-SUM(e.amount) FILTER (WHERE a.owner = :p AND a.kind = 'bonus' AND EXISTS ("
    "  SELECT 1 FROM entries h JOIN accounts ha ON ha.id = h.account_id "
    "  WHERE h.transaction_id = t.id AND ha.owner = 'platform' AND ha.kind = 'house')), 0) "
    "+ COALESCE(-SUM(e.amount) FILTER (WHERE a.owner = 'platform' AND a.kind = 'bonus_cost'), 0) "
    "FROM entries e JOIN accounts a ON a.id = e.account_id JOIN transactions t ON t.id = e.transaction_id "
    "WHERE t.player_id = CAST(:p AS uuid) AND t.currency = 'EUR'")


@pytest.fixture(scope="module")
async def wallet(module_service_settings: Any) -> AsyncIterator[Wallet]:
    app = build_wallet(module_service_settings(WalletSettings, house_shards=2, hold_sweep_seconds=3600))
    async with running(app) as client:
        yield Wallet(app, client)


@pytest.fixture(scope="module")
async def aff(module_service_settings: Any, nats_server: Any) -> AsyncIterator[Affiliates]:
    clock = ManualClock(utcnow() - timedelta(hours=1))
    async with affiliates_app(module_service_settings, nats_server.url, clock) as a:
        yield a


async def test_the_statement_of_a_referred_players_real_play_agrees_with_the_ledger(wallet: Wallet,
                                                                                    aff: Affiliates) -> None:
    a = await aff.create({"currency": "EUR", "revshare": [{"from_ngr": 0, "basis_points": 4000}]})
    click = await aff.click_id(await aff.link(a["affiliate_id"]), ip="203.0.113.200")
    player = await aff.register(click, utcnow())
    assert (await aff.attribution(player))["affiliate_id"] == a["affiliate_id"]
    month = f"{utcnow().year:04d}-{utcnow().month:02d}"

    p = str(player)
    grant_id = f"g-{uuid.uuid4().hex[:8]}"
    await wallet.deposit(player, 10_000)
    await wallet.post("/bonuses", {"idempotency_key": f"grant-{grant_id}", "grant_id": grant_id, "player_id": p,
                                   "currency": "EUR", "amount": 3_000})
    await wallet.post("/bets", wallet.bet_body(player, 10_000, "r1"))                # all cash
    await wallet.post("/wins", wallet.win_body(player, 0, "r1"))
    await wallet.post("/bets", wallet.bet_body(player, 2_000, "r2"))                 # all bonus (cash is 0)
    await wallet.post("/wins", wallet.win_body(player, 500, "r2"))                   # back to the bonus
    await wallet.post("/bets", wallet.bet_body(player, 1_000, "r3", key=f"bet-r3-{p}"))
    await wallet.post("/rollbacks", wallet.rollback_body(player, f"bet-r3-{p}"))      # undone
    converted = await wallet.post(f"/bonuses/{grant_id}/convert", {"idempotency_key": f"conv-{grant_id}"})
    assert converted["amount"] == 1_500  # 3 000 − 2 000 + 500 (the rolled-back 1 000 came back)

    async with wallet.app.state.runtime.database.session() as s:
        ledger_ggr = int((await s.execute(LEDGER_GGR, {"p": player})).scalar_one())
        ledger_bonus_cost = int((await s.execute(LEDGER_BONUS_COST, {"p": p})).scalar_one())
    # by hand: GGR 10 000 + 2 000 − 500 = 11 500; bonus cost 2 000 − 500 + 1 500 converted = 3 000
    assert (ledger_ggr, ledger_bonus_cost) == (11_500, 3_000)

    async def agreed() -> dict[str, Any] | None:
        st = await aff.statement(a["affiliate_id"], month)
        return st if (st["ggr"], st["bonus_cost"]) == (ledger_ggr, ledger_bonus_cost) else None
    try:
        st = await eventually(agreed, what="the statement agreeing with the ledger")
    except AssertionError:
        raise AssertionError(f"statement {await aff.statement(a['affiliate_id'], month)}") from None
    # NGR 11 500 − 3 000 = 8 500 (no fees, no tax in this jurisdiction); 40 % = 3 400
    assert (st["stakes"], st["wins"], st["ngr"], st["revshare"]) == (12_000, 500, 8_500, 3_400)
    [line] = st["lines"]
    assert (line["ggr"], line["bonus_cost"], line["ngr_before_tax"]) == (11_500, 3_000, 8_500)
