"""gameplane.devtools.ledgerfigures against a hand-made set of wallet operations, booked through the
real wallet's API at chosen instants around a UTC midnight: every figure of every day and currency
is written here by hand from the operations (not computed by the helper's formulas, nor by
contracts.kpis), including what must stay out (grants, holds, voids, a chargeback, an adjustment, a
free-spin win, a day before and after the range) and a rollback booked the day after its bet."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from walletlib import Wallet

from gameplane.devtools.ledgerfigures import LedgerFigures, ledger_figures
from gameplane.devtools.testing import running
from gameplane.kit.db import libpq_dsn
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings

D0, D1, D2, D3 = date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29), date(2026, 11, 30)


def at(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC)


@pytest.fixture
async def wallet(service_settings: Any) -> AsyncIterator[tuple[Wallet, Callable[[datetime], None], str]]:
    """A wallet of its own (its database holds only this test's operations) whose clock the test
    sets. On the Python path: the SQL fast path reads the clock it was built with (the two paths'
    rows are held equal by test_wallet_fast_path.py)."""
    settings = service_settings(WalletSettings, house_shards=3, hold_sweep_seconds=3600, sql_fast_path=False)
    app = build_app(settings)
    rt = app.state.runtime
    now = [datetime.now(UTC)]
    rt.state["ctx"] = dataclasses.replace(rt.state["ctx"], clock=lambda: now[0])

    def set_clock(instant: datetime) -> None:
        now[0] = instant

    async with running(app) as client:
        yield Wallet(app, client), set_clock, settings.database_url


async def test_each_days_figures_per_currency_are_the_hand_computed_ones(wallet: Any) -> None:
    w, clock, dsn = wallet
    alice, bob = uuid.uuid4(), uuid.uuid4()
    key = iter(f"k{i}-{alice}" for i in range(1000))

    def op(**body: Any) -> dict[str, Any]:
        return {"idempotency_key": next(key), "currency": "EUR", **body}

    def play(player: uuid.UUID, amount: int, round_id: str, currency: str = "EUR") -> dict[str, Any]:
        return {"idempotency_key": next(key), "player_id": str(player), "currency": currency, "amount": amount,
                "round_id": round_id, "game_id": "starburst", "provider": "rgs"}

    # D0, before the range: a deposit that must not show
    clock(at(D0, 23, 59, 59))
    await w.post("/deposits", op(player_id=str(bob), currency="USD", amount=7))

    # D1 EUR: alice deposits 1,000 and receives a 2,000 bonus grant
    clock(at(D1, 10))
    await w.post("/deposits", op(player_id=str(alice), amount=1_000))
    await w.post("/bonuses", op(player_id=str(alice), grant_id=f"g1-{alice}", amount=2_000))
    # bet 1,500: cash 1,000 then bonus 500; win 600 in the stake's proportion: bonus 600*500//1500 = 200
    clock(at(D1, 10, 2))
    await w.post("/bets", play(alice, 1_500, "r1"))
    await w.post("/wins", play(alice, 600, "r1"))
    # cash is now 400, bonus 1,700: a bet of 300 is all cash
    await w.post("/bets", play(alice, 300, "r2"))
    # the last second of D1: a bet of 700 = cash 100 + bonus 600 ...
    clock(at(D1, 23, 59, 59))
    r3 = play(alice, 700, "r3")
    await w.post("/bets", r3)
    # ... rolled back in the first second of D2: it counts negatively on D2, not on D1
    clock(at(D2, 0, 0, 1))
    await w.post("/rollbacks", {"idempotency_key": next(key), "player_id": str(alice), "currency": "EUR",
                                "bet_idempotency_key": r3["idempotency_key"], "provider": "rgs"})

    # D1 USD: bob deposits 5,000, stakes 1,000 and wins 2,500; a PSP fee of 75 on his deposit
    clock(at(D1, 12))
    await w.post("/deposits", op(player_id=str(bob), currency="USD", amount=5_000))
    await w.post("/bets", play(bob, 1_000, "u1", "USD"))
    await w.post("/wins", play(bob, 2_500, "u1", "USD"))
    await w.post("/fees", op(player_id=str(bob), currency="USD", amount=75, psp="simpsp",
                             psp_reference="fee_u1", payment_reference="pay-u1"))

    # D2 EUR: the grant (1,700 after the rollback) converts with a cap of 1,000; 700 go back
    clock(at(D2, 10))
    await w.post(f"/bonuses/g1-{alice}/convert", {"idempotency_key": next(key), "amount": 1_000})
    await w.post("/fees", op(player_id=str(alice), amount=45, psp="simpsp", psp_reference="fee_a1",
                             payment_reference="pay-a1"))
    # a withdrawal: 500 held, 300 paid out, 200 voided back
    hold = await w.post("/withdrawals", op(player_id=str(alice), amount=500))
    await w.post(f"/withdrawals/{hold['hold_id']}/post", {"idempotency_key": next(key), "amount": 300})
    await w.post(f"/withdrawals/{hold['hold_id']}/void", {"idempotency_key": next(key)})
    # none of these is a stake, a win, a conversion, a fee, a deposit or a withdrawal
    await w.post("/adjustments", op(player_id=str(alice), amount=100, reason="goodwill gesture"))
    await w.post("/chargebacks", op(player_id=str(alice), amount=50, psp="simpsp", psp_reference="cb-a1"))
    await w.post("/bonuses", op(player_id=str(alice), grant_id=f"fs-{alice}", amount=0))
    await w.post(f"/bonuses/fs-{alice}/free-spin-wins", {
        "idempotency_key": next(key), "player_id": str(alice), "currency": "EUR", "amount": 250,
        "award_id": "aw1", "round_id": "fs1", "game_id": "starburst", "provider": "rgs"})

    # D3, after the range: a bet that must not show
    clock(at(D3, 0, 0, 0))
    await w.post("/bets", play(alice, 100, "r4"))
    assert (await w.reconcile())["ok"]

    expected = {
        (D1, "EUR"): LedgerFigures(stakes=1_500 + 300 + 700, wins=600, bonus_stakes=500 + 600, bonus_wins=200,
                                   deposits=1_000),
        (D2, "EUR"): LedgerFigures(stakes=-700, bonus_stakes=-600, bonus_converted=1_000, payment_fees=45,
                                   withdrawals=300),
        (D1, "USD"): LedgerFigures(stakes=1_000, wins=2_500, payment_fees=75, deposits=5_000),
    }
    assert await ledger_figures(dsn, D1, D2) == expected
    # the range's ends are included, and nothing else: D0 and D3 appear only when asked for
    wider = await ledger_figures(dsn, D0, D3)
    assert wider == {**expected, (D0, "USD"): LedgerFigures(deposits=7), (D3, "EUR"): LedgerFigures(stakes=100)}
    assert await ledger_figures(dsn, D2, D2) == {(D2, "EUR"): expected[(D2, "EUR")]}
    # one player's share: bob played only in USD (his fee is his), alice only in EUR
    assert await ledger_figures(dsn, D1, D2, players=[bob]) == {(D1, "USD"): expected[(D1, "USD")]}
    assert await ledger_figures(dsn, D1, D2, players=[alice]) == {
        k: v for k, v in expected.items() if k[1] == "EUR"}
    assert await ledger_figures(dsn, D1, D2, players=[]) == {}

    # the days are UTC's whatever the database's time zone: in New York the rollback's 00:00:01 UTC
    # is still D1, where a helper dating by the session's zone would put it (the negative control)
    async with w.app.state.runtime.database.session() as s:
        db = (await s.execute(text("SELECT current_database()"))).scalar_one()
        await s.execute(text(f'ALTER DATABASE "{db}" SET timezone TO \'America/New_York\''))
        await s.commit()
    conn = await asyncpg.connect(libpq_dsn(dsn))
    try:
        naive = await conn.fetchval("SELECT created_at::date FROM transactions WHERE kind = 'rollback'")
    finally:
        await conn.close()
    assert naive == D1
    assert await ledger_figures(dsn, D1, D2) == expected


async def test_an_empty_range_or_a_reversed_one(wallet: Any) -> None:
    _, _, dsn = wallet
    assert await ledger_figures(dsn, D1, D2) == {}
    with pytest.raises(ValueError):
        await ledger_figures(dsn, D2, D1)
