"""A payment provider's fee booked by the wallet (POST /internal/wallet/fees, called by payments'
reconciliation): the platform's payment_fees expense is debited and psp_clearing credited, the
player's balances and the house do not move, the event names the player of the payment, the key
is idempotent like every money route and the ledger still reconciles. Against real Postgres and
NATS, through the wallet's HTTP API as payments calls it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from walletlib import W, Wallet, slug

from gameplane.devtools.testing import as_service, running, stored_events
from gameplane.kit.events import Envelope
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings


@pytest.fixture(scope="module")
async def wallet(module_service_settings: Any) -> AsyncIterator[Wallet]:
    app = build_app(module_service_settings(WalletSettings, house_shards=2, hold_sweep_seconds=3600))
    async with running(app) as client:
        yield Wallet(app, client)


@pytest.fixture
def player() -> uuid.UUID:
    return uuid.uuid4()


def fee_body(player: uuid.UUID, amount: int, ref: str | None = None, **kw: Any) -> dict[str, Any]:
    ref = ref or f"fee_{uuid.uuid4().hex}"
    return {"idempotency_key": f"fee:simpsp:{ref}", "player_id": str(player), "currency": "EUR", "amount": amount,
            "psp": "simpsp", "psp_reference": ref, "payment_reference": f"pay-{uuid.uuid4()}", **kw}


async def platform_balances(wallet: Wallet, currency: str = "EUR") -> dict[str, int]:
    """The platform's accounts in the currency, shards summed (kind -> balance)."""
    async with wallet.app.state.runtime.database.session() as s:
        rows = (await s.execute(text(
            "SELECT kind, sum(balance) FROM accounts WHERE owner = 'platform' AND currency = :c GROUP BY 1"),
            {"c": currency})).tuples().all()
    return {k: int(v) for k, v in rows}


async def test_a_fee_debits_payment_fees_and_credits_psp_clearing_without_touching_the_player(
        wallet: Wallet, player: uuid.UUID) -> None:
    await wallet.deposit(player, 10_000)
    await wallet.post("/bets", wallet.bet_body(player, 400, f"r-{player}"))
    before = await platform_balances(wallet)
    body = fee_body(player, 150)
    fee = await wallet.post("/fees", body)
    assert (fee["kind"], fee["amount"], fee["player_id"]) == ("fee", 150, str(player))
    # the player's money is where it was: the answer shows it, and so does the balance route
    assert fee["balance"] == {"currency": "EUR", "cash": 9_600, "bonus": 0, "withdrawal_hold": 0}
    assert await wallet.balance(player) == {"currency": "EUR", "cash": 9_600, "bonus": 0, "withdrawal_hold": 0}
    view = await wallet.get(f"/transactions/{fee['transaction_id']}")
    assert {e["account"]: e["amount"] for e in view["entries"]} == {
        "platform:payment_fees:EUR": -150, "platform:psp_clearing:EUR": 150}
    assert (view["cash"], view["bonus"], view["player_id"]) == (0, 0, str(player))
    assert view["details"] == {"psp": "simpsp", "psp_reference": body["psp_reference"],
                               "payment_reference": body["payment_reference"]}
    after = await platform_balances(wallet)
    assert after.get("payment_fees", 0) - before.get("payment_fees", 0) == -150
    assert after["psp_clearing"] - before["psp_clearing"] == 150
    assert after["house"] == before["house"]  # GGR is the house's movement: a fee is not in it
    report = await wallet.reconcile()
    assert report["ok"], report["breaches"]


async def test_the_fee_event_names_the_player_the_provider_and_the_payment(wallet: Wallet,
                                                                          player: uuid.UUID) -> None:
    body = fee_body(player, 37, currency="GBP")
    fee = await wallet.post("/fees", body)
    found = await stored_events(wallet.app.state.runtime.settings.nats_url, "gameplane.wallet.>",
                                {"transaction_id": fee["transaction_id"]}, 1)
    (ev,) = [Envelope.model_validate(e).model_dump(mode="json") for e in found]
    assert ev["type"] == "wallet.fee_charged"
    assert {k: ev["data"][k] for k in ("player_id", "currency", "amount", "cash", "bonus", "psp", "psp_reference",
                                       "payment_reference")} == {
        "player_id": str(player), "currency": "GBP", "amount": 37, "cash": 0, "bonus": 0, "psp": "simpsp",
        "psp_reference": body["psp_reference"], "payment_reference": body["payment_reference"]}


async def test_a_fee_replays_identically_and_a_conflicting_replay_is_refused(wallet: Wallet,
                                                                            player: uuid.UUID) -> None:
    body = fee_body(player, 90)
    before = await platform_balances(wallet)
    first, *together = await asyncio.gather(*[wallet.post("/fees", body) for _ in range(5)])
    assert all(doc == first for doc in together)
    assert await wallet.post("/fees", body) == first
    assert slug(await wallet.post("/fees", {**body, "amount": 91}, 409)) == "duplicate-transaction"
    assert slug(await wallet.post("/fees", {**body, "player_id": str(uuid.uuid4())}, 409)) == "duplicate-transaction"
    # the same key for another operation is a conflict too
    assert slug(await wallet.deposit(player, 90, key=body["idempotency_key"], status=409)) == "duplicate-transaction"
    after = await platform_balances(wallet)
    assert after.get("payment_fees", 0) - before.get("payment_fees", 0) == -90  # booked once
    async with wallet.app.state.runtime.database.session() as s:
        n = (await s.execute(text("SELECT count(*) FROM transactions WHERE idempotency_key = :k"),
                             {"k": body["idempotency_key"]})).scalar_one()
    assert n == 1


@pytest.mark.parametrize(("change", "why"), [
    ({"amount": 0}, "a fee moves money"),
    ({"amount": -5}, "a fee is not a refund"),
    ({"amount": 100_000_000_000_000}, "beyond the currency's bound"),
    ({"psp_reference": ""}, "the report row's reference"),
    ({"payment_reference": None}, "the payment it belongs to"),
    ({"player_id": "not-a-uuid"}, "the player of the payment"),
    ({"amount": 1.5}, "minor units are integers"),
])
async def test_a_malformed_fee_is_a_422_problem_and_moves_nothing(wallet: Wallet, player: uuid.UUID,
                                                                 change: dict[str, Any], why: str) -> None:
    body = {**fee_body(player, 10), **change}
    before = await platform_balances(wallet)
    r = await wallet.client.post(f"{W}/fees", json=body, headers=wallet.headers("/fees"))
    assert r.status_code == 422, why
    assert r.headers["content-type"].startswith("application/problem+json")
    assert slug(r.json()) == "validation-error"
    assert await platform_balances(wallet) == before


async def test_a_fee_in_an_unsupported_currency_is_refused(wallet: Wallet, player: uuid.UUID) -> None:
    problem = await wallet.post("/fees", fee_body(player, 10, currency="XXX"), 422)
    assert slug(problem) == "unsupported-currency"


@pytest.mark.parametrize("caller", ["games", "bonus", "backoffice"])
async def test_only_payments_books_fees(wallet: Wallet, player: uuid.UUID, caller: str) -> None:
    body = fee_body(player, 10)
    r = await wallet.client.post(f"{W}/fees", json=body, headers=as_service(wallet.app, caller))
    assert r.status_code == 403 and slug(r.json()) == "caller-not-allowed", r.text
    # the negative control: the same body from payments is booked
    assert (await wallet.post("/fees", body))["kind"] == "fee"


async def test_the_player_does_not_see_the_operators_fee_but_the_back_office_does(wallet: Wallet,
                                                                                  player: uuid.UUID) -> None:
    dep = await wallet.deposit(player, 500)
    fee = await wallet.post("/fees", fee_body(player, 8))
    mine = as_service(wallet.app, "gateway", player)
    r = await wallet.client.get("/v1/wallet/transactions", headers=mine)
    assert [t["id"] for t in r.json()["items"]] == [dep["transaction_id"]]
    r = await wallet.client.get(f"/v1/wallet/transactions/{fee['transaction_id']}", headers=mine)
    assert r.status_code == 404
    r = await wallet.client.get(f"/v1/wallet/transactions/{dep['transaction_id']}", headers=mine)
    assert r.status_code == 200  # the negative control: their own deposit is theirs to read
    page = await wallet.get(f"/players/{player}/transactions")
    assert [t["id"] for t in page["items"]] == [fee["transaction_id"], dep["transaction_id"]]


async def test_fees_for_many_players_at_once_keep_every_invariant(wallet: Wallet) -> None:
    players = [uuid.uuid4() for _ in range(6)]
    await asyncio.gather(*[wallet.deposit(p, 1_000) for p in players])
    before = await platform_balances(wallet)
    bodies = [fee_body(p, 15 + i) for i, p in enumerate(players)]
    await asyncio.gather(*[wallet.post("/fees", b) for b in bodies],
                         *[wallet.deposit(p, 200) for p in players])
    after = await platform_balances(wallet)
    fees = sum(15 + i for i in range(6))  # 105
    assert after["payment_fees"] - before.get("payment_fees", 0) == -fees
    assert after["psp_clearing"] - before["psp_clearing"] == fees - 6 * 200
    report = await wallet.reconcile()
    assert report["ok"], report["breaches"]


async def test_reconciliation_catches_a_fee_booked_on_the_house(wallet: Wallet, player: uuid.UUID) -> None:
    """The negative control of invariant 9: the fee's credit moved from psp_clearing to the house,
    balances moved with it, so every other invariant still holds and only this one can see it."""
    await wallet.deposit(player, 100)
    await wallet.post("/bets", wallet.bet_body(player, 10, f"r-{player}"))  # the house has an account
    fee = await wallet.post("/fees", fee_body(player, 70))
    assert (await wallet.reconcile())["ok"]
    db = wallet.app.state.runtime.database
    async with db.transaction() as s:
        house = (await s.execute(text("SELECT id FROM accounts WHERE owner = 'platform' AND kind = 'house' "
                                      "AND currency = 'EUR' ORDER BY id LIMIT 1"))).scalar_one()
        moved = (await s.execute(text(
            "UPDATE entries e SET account_id = :house FROM accounts a WHERE a.id = e.account_id "
            "AND a.kind = 'psp_clearing' AND e.transaction_id = :tx RETURNING a.id"),
            {"house": house, "tx": fee["transaction_id"]})).scalar_one()
        await s.execute(text("UPDATE accounts SET balance = balance - 70 WHERE id = :id"), {"id": moved})
        await s.execute(text("UPDATE accounts SET balance = balance + 70 WHERE id = :id"), {"id": house})
    try:
        report = await wallet.reconcile()
        assert {b["invariant"] for b in report["breaches"]} == {9}
        assert any(fee["transaction_id"] in b["detail"] and "house" in b["detail"] for b in report["breaches"])
    finally:  # put it back: the module's other tests reconcile this database too
        async with db.transaction() as s:
            await s.execute(text(
                "UPDATE entries SET account_id = :clearing WHERE transaction_id = :tx AND account_id = :house"),
                {"clearing": moved, "tx": fee["transaction_id"], "house": house})
            await s.execute(text("UPDATE accounts SET balance = balance + 70 WHERE id = :id"), {"id": moved})
            await s.execute(text("UPDATE accounts SET balance = balance - 70 WHERE id = :id"), {"id": house})
    assert (await wallet.reconcile())["ok"]
