"""Chargebacks and the receivable (docs/reference/ledger.md): the provider takes a deposit back, the
player's cash pays up to its balance, the shortfall becomes a debt the next deposit settles first;
cash never goes negative. Plus the deposit allowance payments asks before a payment session.
Against real Postgres and NATS, through the wallet's HTTP API as payments calls it."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from walletlib import W, Wallet, protect, slug

from gameplane.contracts.players import LimitState
from gameplane.devtools.testing import as_service, running, stored_events
from gameplane.kit.events import Envelope
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings


@pytest.fixture(scope="module", params=[True, False], ids=["sql-fast-path", "python-path"])
async def wallet(module_service_settings: Any, request: pytest.FixtureRequest) -> AsyncIterator[Wallet]:
    """Both ways bets are answered (they lock the player's rows differently from deposits and chargebacks)."""
    app = build_app(module_service_settings(WalletSettings, house_shards=4, hold_sweep_seconds=3600,
                                            db_pool_size=12, sql_fast_path=request.param))
    async with running(app) as client:
        yield Wallet(app, client)


@pytest.fixture
def player() -> uuid.UUID:
    return uuid.uuid4()


def chargeback_body(player: uuid.UUID, amount: int, ref: str | None = None, **kw: Any) -> dict[str, Any]:
    ref = ref or f"psp-{uuid.uuid4()}"
    return {"idempotency_key": f"payments:chargeback:{ref}", "player_id": str(player), "currency": "EUR",
            "amount": amount, "psp": "simpsp", "psp_reference": ref, **kw}


async def entries(wallet: Wallet, tx_id: str) -> dict[str, int]:
    """The transaction's entries as the back office reads them: account (owner:kind:currency) -> amount."""
    view = await wallet.get(f"/transactions/{tx_id}")
    return {e["account"]: e["amount"] for e in view["entries"]}


async def events(wallet: Wallet, expect: int = 1, **match: Any) -> list[dict[str, Any]]:
    found = await stored_events(wallet.app.state.runtime.settings.nats_url, "gameplane.wallet.>", match, expect)
    return [Envelope.model_validate(e).model_dump(mode="json") for e in found]


async def test_chargeback_within_the_cash_takes_it_from_cash_and_books_no_debt(wallet: Wallet,
                                                                              player: uuid.UUID) -> None:
    await wallet.deposit(player, 1000)
    cb = await wallet.post("/chargebacks", chargeback_body(player, 300))
    assert cb["kind"] == "chargeback" and cb["amount"] == 300 and cb["receivable_booked"] == 0
    assert cb["balance"] == {"currency": "EUR", "cash": 700, "bonus": 0, "withdrawal_hold": 0}
    assert await entries(wallet, cb["transaction_id"]) == {f"{player}:cash:EUR": -300, "platform:psp_clearing:EUR": 300}
    # no chargeback ever went beyond the cash: the balance has no receivable to report
    assert "receivable" not in await wallet.balance(player)


async def test_chargeback_beyond_the_cash_books_the_shortfall_as_a_receivable(wallet: Wallet,
                                                                              player: uuid.UUID) -> None:
    await wallet.deposit(player, 1000)
    await wallet.post("/bets", wallet.bet_body(player, 800, "r1"))  # played away: 200 cash left
    ref = f"psp-{uuid.uuid4()}"
    cb = await wallet.post("/chargebacks", chargeback_body(player, 1000, ref))
    assert cb["receivable_booked"] == 800
    assert cb["balance"] == {"currency": "EUR", "cash": 0, "bonus": 0, "withdrawal_hold": 0, "receivable": 800}
    assert await entries(wallet, cb["transaction_id"]) == {
        f"{player}:cash:EUR": -200, f"{player}:receivable:EUR": -800, "platform:psp_clearing:EUR": 1000}
    assert await wallet.balance(player) == {"currency": "EUR", "cash": 0, "bonus": 0, "withdrawal_hold": 0,
                                            "receivable": 800}
    mine = await wallet.get(f"/players/{player}/balances")
    assert mine["balances"] == [{"currency": "EUR", "cash": 0, "bonus": 0, "withdrawal_hold": 0, "receivable": 800}]
    (ev,) = await events(wallet, transaction_id=cb["transaction_id"])
    assert ev["type"] == "wallet.charged_back"
    assert {k: ev["data"][k] for k in ("amount", "cash", "receivable", "outstanding", "psp", "psp_reference")} == {
        "amount": 1000, "cash": 200, "receivable": 800, "outstanding": 800, "psp": "simpsp", "psp_reference": ref}
    # a player with nothing left cannot bet on the debt
    problem = await wallet.post("/bets", wallet.bet_body(player, 1, "r2"), 402)
    assert slug(problem) == "insufficient-funds"
    assert (await wallet.reconcile())["ok"]


async def test_chargeback_of_a_player_without_accounts_is_all_debt(wallet: Wallet, player: uuid.UUID) -> None:
    cb = await wallet.post("/chargebacks", chargeback_body(player, 250))
    assert cb["receivable_booked"] == 250 and cb["balance"]["cash"] == 0 and cb["balance"]["receivable"] == 250


async def test_next_deposit_settles_the_receivable_first_partly_then_fully(wallet: Wallet,
                                                                           player: uuid.UUID) -> None:
    await wallet.post("/chargebacks", chargeback_body(player, 800))
    part = await wallet.deposit(player, 500)
    assert part["receivable_settled"] == 500
    assert part["balance"] == {"currency": "EUR", "cash": 0, "bonus": 0, "withdrawal_hold": 0, "receivable": 300}
    assert await entries(wallet, part["transaction_id"]) == {
        f"{player}:receivable:EUR": 500, "platform:psp_clearing:EUR": -500}
    (ev,) = await events(wallet, transaction_id=part["transaction_id"])
    assert ev["type"] == "wallet.deposit_credited"
    assert (ev["data"]["amount"], ev["data"]["cash"], ev["data"]["receivable_settled"]) == (500, 0, 500)

    rest = await wallet.deposit(player, 1000)
    assert rest["receivable_settled"] == 300
    assert rest["balance"] == {"currency": "EUR", "cash": 700, "bonus": 0, "withdrawal_hold": 0, "receivable": 0}
    assert await entries(wallet, rest["transaction_id"]) == {
        f"{player}:receivable:EUR": 300, f"{player}:cash:EUR": 700, "platform:psp_clearing:EUR": -1000}

    clear = await wallet.deposit(player, 50)  # nothing owed any more: all of it is cash
    assert clear["receivable_settled"] == 0 and clear["balance"]["cash"] == 750
    assert await entries(wallet, clear["transaction_id"]) == {f"{player}:cash:EUR": 50,
                                                              "platform:psp_clearing:EUR": -50}
    assert (await wallet.reconcile())["ok"]


async def test_a_receivable_in_one_currency_leaves_the_others_alone(wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.post("/chargebacks", chargeback_body(player, 400))
    usd = await wallet.post("/deposits", {"idempotency_key": f"usd-{player}", "player_id": str(player),
                                          "currency": "USD", "amount": 100})
    assert usd["receivable_settled"] == 0 and usd["balance"]["cash"] == 100
    assert (await wallet.balance(player))["receivable"] == 400


async def test_chargeback_replays_identically_and_a_conflicting_replay_is_refused(wallet: Wallet,
                                                                                  player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    body = chargeback_body(player, 300)
    first = await wallet.post("/chargebacks", body)
    together = await asyncio.gather(*[wallet.post("/chargebacks", body) for _ in range(4)])
    assert all(doc == first for doc in together)
    assert slug(await wallet.post("/chargebacks", {**body, "amount": 299}, 409)) == "duplicate-transaction"
    # the same key for another operation is a conflict too
    assert slug(await wallet.deposit(player, 300, key=body["idempotency_key"], status=409)) == "duplicate-transaction"
    assert await wallet.balance(player) == {"currency": "EUR", "cash": 0, "bonus": 0, "withdrawal_hold": 0,
                                            "receivable": 200}


async def test_chargebacks_ignore_player_protection_and_received_deposits_are_credited(wallet: Wallet,
                                                                                      player: uuid.UUID) -> None:
    await wallet.deposit(player, 100)
    await protect(wallet, player, 1, self_excluded_until=datetime.now(UTC) + timedelta(days=180))
    cb = await wallet.post("/chargebacks", chargeback_body(player, 150))
    assert cb["receivable_booked"] == 50
    # a new deposit is refused; one whose money the provider already took is credited (and settles first)
    assert (await wallet.deposit(player, 80, status=403))["reason"] == "self-excluded"
    got = await wallet.deposit(player, 80, received=True)
    assert got["receivable_settled"] == 50 and got["balance"]["cash"] == 30


async def test_bad_chargebacks_are_refused_with_problems(wallet: Wallet, player: uuid.UUID) -> None:
    for bad, status, expect in [({"amount": 0}, 422, "validation-error"), ({"amount": -5}, 422, "validation-error"),
                                ({"currency": "XXX"}, 422, "unsupported-currency"),
                                ({"psp_reference": ""}, 422, "validation-error")]:
        r = await wallet.client.post(W + "/chargebacks", json={**chargeback_body(player, 10), **bad},
                                     headers=wallet.headers("/chargebacks"))
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert slug(r.json()) == expect
    assert "receivable" not in await wallet.balance(player)


@pytest.mark.parametrize("caller", ["games", "bonus", "backoffice", "gateway"])
async def test_only_payments_may_charge_back_or_ask_the_deposit_allowance(wallet: Wallet, player: uuid.UUID,
                                                                           caller: str) -> None:
    r = await wallet.client.post(W + "/chargebacks", json=chargeback_body(player, 10),
                                 headers=as_service(wallet.app, caller))
    assert r.status_code == 403 and slug(r.json()) == "caller-not-allowed", r.text
    r = await wallet.client.get(W + f"/players/{player}/deposit-allowance/EUR", headers=as_service(wallet.app, caller))
    assert r.status_code == 403 and slug(r.json()) == "caller-not-allowed", r.text
    r = await wallet.client.post(W + "/chargebacks", json=chargeback_body(player, 10))
    assert r.status_code == 401
    assert "receivable" not in await wallet.balance(player)


@pytest.mark.parametrize("path", ["/deposits", "/withdrawals"])
async def test_payments_is_the_caller_of_deposits_and_withdrawals(wallet: Wallet, player: uuid.UUID,
                                                                  path: str) -> None:
    body = {"idempotency_key": f"k-{uuid.uuid4()}", "player_id": str(player), "currency": "EUR", "amount": 1}
    r = await wallet.client.post(W + path, json=body, headers=as_service(wallet.app, "games"))
    assert r.status_code == 403
    await wallet.deposit(player, 5)
    r = await wallet.client.post(W + path, json=body, headers=as_service(wallet.app, "payments"))
    assert r.status_code == 200, r.text


# ---- deposit allowance -----------------------------------------------------------------------

async def allowance(wallet: Wallet, player: uuid.UUID, currency: str = "EUR", **params: Any) -> dict[str, Any]:
    return await wallet.get(f"/players/{player}/deposit-allowance/{currency}", **params)  # type: ignore[no-any-return]


async def test_deposit_allowance_without_protection_is_unlimited(wallet: Wallet, player: uuid.UUID) -> None:
    assert await allowance(wallet, player) == {"allowed": True, "reason": None, "remaining": None, "detail": None}


@pytest.mark.parametrize("field, reason", [("self_excluded_until", "self-excluded"), ("timeout_until", "timed-out")])
async def test_deposit_allowance_refuses_a_blocked_player(wallet: Wallet, player: uuid.UUID, field: str,
                                                          reason: str) -> None:
    await protect(wallet, player, 1, **{field: datetime.now(UTC) + timedelta(days=1)})
    got = await allowance(wallet, player)
    assert got["allowed"] is False and got["reason"] == reason
    # and the wallet's own deposit guard agrees
    assert (await wallet.deposit(player, 10, status=403))["reason"] == reason
    # a block that has ended blocks nothing (negative control)
    await protect(wallet, player, 2, **{field: datetime.now(UTC) - timedelta(seconds=1)})
    assert (await allowance(wallet, player))["allowed"] is True


async def test_deposit_allowance_reports_what_is_left_under_the_strictest_limit(wallet: Wallet,
                                                                                player: uuid.UUID) -> None:
    limits = [LimitState(kind="deposit", period="day", value=500), LimitState(kind="deposit", period="week", value=300)]
    await protect(wallet, player, 1, limits=limits)
    assert await allowance(wallet, player) == {"allowed": True, "reason": None, "remaining": 300, "detail": None}
    await wallet.deposit(player, 200)
    assert (await allowance(wallet, player))["remaining"] == 100
    assert (await allowance(wallet, player, amount=100))["allowed"] is True
    over = await allowance(wallet, player, amount=101)
    assert (over["allowed"], over["reason"], over["remaining"]) == (False, "deposit-limit", 100)
    # what the allowance says is what a deposit meets
    assert (await wallet.deposit(player, 101, status=403))["reason"] == "deposit-limit"
    await wallet.deposit(player, 100)
    spent = await allowance(wallet, player)
    assert (spent["allowed"], spent["reason"], spent["remaining"]) == (False, "deposit-limit", 0)
    # limits are in the player's currency: another currency is not limited
    assert (await allowance(wallet, player, "USD"))["remaining"] is None


async def test_deposit_allowance_refuses_bad_input(wallet: Wallet, player: uuid.UUID) -> None:
    assert slug(await wallet.get(f"/players/{player}/deposit-allowance/XXX", 422)) == "unsupported-currency"
    assert slug(await wallet.get(f"/players/{player}/deposit-allowance/EUR", 422, amount=0)) == "validation-error"
    assert slug(await wallet.get("/players/not-a-uuid/deposit-allowance/EUR", 422)) == "validation-error"


# ---- concurrency -----------------------------------------------------------------------------

async def test_parallel_chargebacks_deposits_bets_and_holds_on_one_player_keep_the_invariants(
        wallet: Wallet, player: uuid.UUID) -> None:
    """Chargebacks race deposits, bets and withdrawal holds on one player. Afterwards the ledger
    reconciles (including invariant 7: every chargeback took cash first, every deposit settled the
    debt first, judged against the balances just before it), cash never went negative (the
    database refuses it), and the player's net position is exactly what was acknowledged."""
    rng = random.Random(14)
    await wallet.deposit(player, 2000)
    acked: dict[str, dict[str, Any]] = {}

    async def send(path: str, body: dict[str, Any]) -> None:
        r = await wallet.client.post(W + path, json=body, headers=wallet.headers(path))
        assert r.status_code in (200, 402), r.text
        if r.status_code == 200:
            acked[body["idempotency_key"]] = r.json()
        else:
            assert slug(r.json()) == "insufficient-funds" and path in ("/bets", "/withdrawals")

    def op(i: int) -> tuple[str, dict[str, Any]]:
        roll = rng.random()
        amount = rng.randint(1, 900)
        if roll < 0.3:
            return "/chargebacks", chargeback_body(player, amount)
        if roll < 0.6:
            return "/deposits", {"idempotency_key": f"d-{player}-{i}", "player_id": str(player), "currency": "EUR",
                                 "amount": amount, "psp": "simpsp"}
        if roll < 0.85:
            return "/bets", wallet.bet_body(player, amount, f"r-{i}")
        return "/withdrawals", {"idempotency_key": f"w-{player}-{i}", "player_id": str(player), "currency": "EUR",
                                "amount": amount}

    ops = [op(i) for i in range(160)]
    for start in range(0, len(ops), 16):
        await asyncio.gather(*[send(path, body) for path, body in ops[start:start + 16]])

    kinds = {doc["kind"] for doc in acked.values()}
    assert {"chargeback", "deposit", "bet"} <= kinds, kinds
    booked = sum(doc["receivable_booked"] for doc in acked.values() if doc["kind"] == "chargeback")
    settled = sum(doc["receivable_settled"] for doc in acked.values() if doc["kind"] == "deposit")
    assert booked > 0 and settled > 0, "the race never made a debt or never settled one: nothing was tested"
    net = 2000 + sum({"deposit": d["amount"], "chargeback": -d["amount"], "bet": -d["amount"],
                      "withdrawal_hold": -d["amount"]}[d["kind"]] for d in acked.values())
    bal = await wallet.balance(player)
    assert bal["cash"] >= 0 and bal["receivable"] >= 0
    assert bal["cash"] - bal["receivable"] == net
    assert bal["receivable"] == booked - settled
    # with no wins, cash and debt never coexist: a chargeback empties the cash before it books a
    # debt and a deposit pays the debt before it reaches the cash
    assert bal["cash"] == 0 or bal["receivable"] == 0
    report = await wallet.reconcile()
    assert report["ok"], report["breaches"]


# ---- the checks can fail ---------------------------------------------------------------------

async def test_reconciliation_names_a_deposit_that_skipped_the_debt_and_a_foreign_receivable_entry(
        service_settings: Any) -> None:
    """Negative control of invariant 7: forged rows the API would never write are reported."""
    app = build_app(service_settings(WalletSettings, house_shards=2, hold_sweep_seconds=3600))
    async with running(app) as client:
        w = Wallet(app, client)
        player = uuid.uuid4()
        await w.post("/chargebacks", chargeback_body(player, 500))
        assert (await w.reconcile())["ok"]
        dep = await w.deposit(player, 100)
        assert dep["receivable_settled"] == 100
        async with app.state.runtime.database.transaction() as s:  # rewrite history: as if it went to cash
            await s.execute(text(
                "UPDATE entries SET account_id = (SELECT id FROM accounts WHERE owner = :o AND kind = 'cash') "
                "WHERE transaction_id = :t AND account_id = (SELECT id FROM accounts WHERE owner = :o "
                "AND kind = 'receivable')"), {"o": str(player), "t": dep["transaction_id"]})
            await s.execute(text("UPDATE accounts SET balance = balance + (CASE kind WHEN 'cash' THEN 100 "
                                 "ELSE -100 END) WHERE owner = :o AND kind IN ('cash', 'receivable')"),
                            {"o": str(player)})
            await s.execute(text("UPDATE transactions SET kind = 'adjustment' WHERE id = (SELECT t.id FROM "
                                 "transactions t WHERE t.player_id = :p AND t.kind = 'chargeback')"), {"p": player})
        report = await w.reconcile()
        assert not report["ok"]
        found = {b["invariant"] for b in report["breaches"]}
        details = " | ".join(b["detail"] for b in report["breaches"])
        assert found == {7}, details
        assert f"deposit {dep['transaction_id']} of 100 EUR settled 0 when the player owed 500" in details
        assert "(adjustment) moves receivable" in details
