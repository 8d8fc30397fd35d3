"""The PSP's fees (the fee rows of its settlement report, 150 basis points of each settled deposit at
the simulator) booked on the wallet by payments' reconciliation: each row once however often the
day is reconciled, on the platform's payment_fees account, attributed to the player of the payment
it was charged for; a fee for a payment we do not know, a fee listed twice and a fee the PSP
changed after it was booked are mismatches, never a crash and never a second booking. Real wallet,
players, risk and payments over HTTP, the real PSP simulator read through payments' real adapters,
real Postgres and NATS."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from paymentslib import Platform, payments_platform
from sqlalchemy import text

from gameplane.devtools.testing import stored_events
from gameplane.payments.adapters.base import PaymentRequest, build
from gameplane.wallet.reconcile import reconcile


@pytest.fixture
async def platform(service_settings: Any, nats_server: Any):
    async with payments_platform(service_settings, nats_server.url) as p:
        yield p


async def wallet_sql(platform: Platform, sql: str, **params: Any) -> list[Any]:
    async with platform.wallet.state.runtime.database.session() as s:
        return list((await s.execute(text(sql), params)).all())


async def payment_fees(platform: Platform, currency: str = "EUR") -> int:
    rows = await wallet_sql(platform, "SELECT balance FROM accounts WHERE owner = 'platform' AND kind = 'payment_fees' "
                            "AND currency = :c", c=currency)
    return int(rows[0][0]) if rows else 0


def fee_rows(platform: Platform, reference: str) -> list[Any]:
    return [r for r in platform.store.settlements if r.kind == "fee" and r.reference == reference]


@pytest.mark.parametrize("psp", ["simpsp", "cardgw"])
async def test_each_fee_row_is_booked_once_across_two_runs_on_the_payments_player(platform: Platform,
                                                                                 psp: str) -> None:
    today = datetime.now(UTC).date()
    alice, big = await platform.funded(9_000, psp=psp)
    bob, small = await platform.funded(1_500, psp=psp)
    (big_fee,), (small_fee,) = fee_rows(platform, big["reference"]), fee_rows(platform, small["reference"])
    # 150 bp: 9,000 -> 135; 1,500 -> 22.5, which the simulator rounds down to 22
    assert (big_fee.amount, small_fee.amount) == (135, 22)
    first = await platform.reconcile(today)
    again = await platform.reconcile(today)
    assert first["mismatches"] == [] and again["mismatches"] == []
    assert first["fees"] == again["fees"] == 2
    booked = {m["idempotency_key"]: m for m in await platform.wallet_keys("fee:")}
    assert set(booked) == {f"fee:{psp}:{big_fee.psp_reference}", f"fee:{psp}:{small_fee.psp_reference}"}
    mine = booked[f"fee:{psp}:{big_fee.psp_reference}"]
    assert (mine["kind"], mine["amount"], mine["currency"], mine["player_id"]) == ("fee", 135, "EUR", str(alice))
    theirs = booked[f"fee:{psp}:{small_fee.psp_reference}"]
    assert (theirs["amount"], theirs["player_id"]) == (22, str(bob))
    assert await payment_fees(platform) == -157  # booked once, not once per run
    # the players' money is what they deposited: the PSP's fee is the operator's cost
    assert (await platform.balance(alice))["cash"] == 9_000 and (await platform.balance(bob))["cash"] == 1_500
    # the deposits' own movements are still matched one to one (the fees are not payment movements)
    assert sorted(m["idempotency_key"] for m in await platform.wallet_keys("payments:")) == sorted(
        [f"payments:deposit:{big['reference']}", f"payments:deposit:{small['reference']}"])
    (event,) = await stored_events(platform.nats_url, "gameplane.wallet.fee_charged",
                                   {"psp_reference": big_fee.psp_reference}, 1)
    assert (event["data"]["player_id"], event["data"]["amount"], event["data"]["payment_reference"]) == (
        str(alice), 135, big["reference"])
    async with platform.wallet.state.runtime.database.session() as s:
        report = await reconcile(s)
    assert report.ok, report.breaches


async def test_a_fee_on_a_payment_we_never_issued_is_a_mismatch_and_is_not_booked(platform: Platform) -> None:
    today = datetime.now(UTC).date()
    _, known = await platform.funded(2_000)
    stranger = str(uuid.uuid4())
    outsider = build("simpsp", platform.sim.connection("simpsp"))
    try:
        session = await outsider.create_payment(PaymentRequest(
            reference=stranger, player_id=str(uuid.uuid4()), amount=4_000, currency="EUR",
            return_url="https://elsewhere.example/back", expires_at=datetime.now(UTC) + timedelta(hours=1)))
    finally:
        await outsider.aclose()
    await platform.pay(session.redirect_url)
    (odd,) = fee_rows(platform, stranger)
    run = await platform.reconcile(today)
    found = {(m["kind"], m["reference"]) for m in run["mismatches"]}
    # the deposit itself and its fee: both unknown here, both listed
    assert found == {("unknown-reference", stranger)} and len(run["mismatches"]) == 2
    assert any(odd.psp_reference in m["detail"] and "not booked" in m["detail"] for m in run["mismatches"])
    assert run["fees"] == 1  # the known payment's fee (2,000 -> 30) is booked all the same
    (kept,) = fee_rows(platform, known["reference"])
    assert [(m["idempotency_key"], m["amount"]) for m in await platform.wallet_keys("fee:")] == [
        (f"fee:simpsp:{kept.psp_reference}", 30)]
    assert await payment_fees(platform) == -30


async def test_a_fee_listed_twice_is_booked_once_and_listed(platform: Platform) -> None:
    today = datetime.now(UTC).date()
    _, dep = await platform.funded(3_000)
    (row,) = fee_rows(platform, dep["reference"])
    platform.store.settlements.append(dataclasses.replace(row))
    run = await platform.reconcile(today)
    assert [(m["kind"], m["reference"]) for m in run["mismatches"]] == [("double-credit", dep["reference"])]
    assert run["fees"] == 1 and await payment_fees(platform) == -45


async def test_a_fee_the_psp_changed_after_booking_is_listed_and_the_booking_stands(platform: Platform) -> None:
    today = datetime.now(UTC).date()
    _, dep = await platform.funded(6_000)
    (row,) = fee_rows(platform, dep["reference"])
    assert (await platform.reconcile(today))["mismatches"] == []
    row.amount = 95  # the PSP's report now says 95 for a fee it reported (and we booked) as 90
    run = await platform.reconcile(today)
    assert [(m["kind"], m["reference"]) for m in run["mismatches"]] == [("amount-mismatch", dep["reference"])]
    assert run["fees"] == 0
    assert await payment_fees(platform) == -90
    rows = await wallet_sql(platform, "SELECT count(*) FROM transactions WHERE kind = 'fee'")
    assert rows[0][0] == 1


async def test_a_fee_row_beyond_what_the_wallet_takes_is_listed_not_a_failed_run(platform: Platform) -> None:
    today = datetime.now(UTC).date()
    _, dep = await platform.funded(1_000)
    (row,) = fee_rows(platform, dep["reference"])
    row.amount = 100_000_000_001  # one minor unit beyond EUR's bound (docs/api/limits.md)
    run = await platform.reconcile(today)
    (problem,) = run["mismatches"]
    assert (problem["kind"], problem["reference"]) == ("missing-credit", dep["reference"])
    assert "cannot be booked" in problem["detail"]
    assert run["fees"] == 0 and await payment_fees(platform) == 0
    row.amount = 15  # the PSP corrects its report: the next run books it (1,000 at 150 bp)
    run = await platform.reconcile(today)
    assert run["mismatches"] == [] and run["fees"] == 1 and await payment_fees(platform) == -15
