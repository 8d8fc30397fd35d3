"""Reconciliation: the PSP simulator's settlement report (its real CSV, read by payments' real
adapter) against payments' records and the wallet's ledger, clean when the books agree, and each
kind of disagreement found when they do not, each made by a real divergence: a settled payment
whose webhook has not come, a payment at the PSP under a reference we never issued, a webhook
(signed with the PSP's key) for money the PSP never settled, and report rows the PSP got wrong
(another amount, another currency, one settlement listed twice). The fee rows' booking is
tests/services/test_payments_fees.py's."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from paymentslib import Platform, payments_platform
from prometheus_client import REGISTRY

from gameplane.payments.adapters.base import PaymentRequest, build


@pytest.fixture
async def platform(service_settings: Any, nats_server: Any):
    async with payments_platform(service_settings, nats_server.url) as p:
        yield p


def gauge(psp: str) -> float | None:
    return REGISTRY.get_sample_value("gameplane_payments_reconciliation_mismatches", {"psp": psp})


@pytest.mark.parametrize("psp", ["simpsp", "cardgw"])
async def test_a_day_of_deposits_and_payouts_reconciles_clean(platform: Platform, psp: str) -> None:
    today = datetime.now(UTC).date()
    pid, dep = await platform.funded(9_000, psp=psp)
    await platform.funded(1_500, psp=psp)
    wd = (await platform.client.post("/v1/payments/withdrawals", headers=platform.as_player(pid), json={
        "amount": 2_000, "currency": "EUR", "method_fingerprint": dep["method_fingerprint"]})).json()
    po = platform.payout_for(wd["reference"])
    assert po is not None
    await platform.control("POST", f"/control/payouts/{po.psp_reference}", json={"outcome": "paid"})
    await platform.until(pid, wd["reference"], state="paid", credited=True)
    settled = platform.store.report(psp, today)  # what the PSP's report holds: 3 movements and their fees
    assert sorted(r.kind for r in settled if r.kind != "fee") == ["deposit", "deposit", "payout"]
    run = await platform.reconcile(today)
    assert run["mismatches"] == [] and run["report_rows"] == len(settled) and run["records"] == 3
    assert run["fees"] == 2  # one per settled deposit, booked on the wallet
    assert gauge(psp) == 0


async def test_every_disagreement_is_listed_and_counted(platform: Platform) -> None:
    today = datetime.now(UTC).date()
    psp, store = "simpsp", platform.store
    _, good = await platform.funded(1_000)
    _, differs = await platform.funded(3_000)
    _, other_currency = await platform.funded(700)
    _, twice = await platform.funded(800)

    def report_row(reference: str) -> Any:
        return next(r for r in store.settlements if r.reference == reference and r.kind == "deposit")
    # the PSP's report gets three settlements wrong: another amount, another currency, one listed twice
    report_row(differs["reference"]).amount = 3_100
    report_row(other_currency["reference"]).currency = "GBP"
    store.settlements.append(dataclasses.replace(report_row(twice["reference"])))

    pid = await platform.player()
    await platform.delivery(paused=True)  # from here on the PSP's webhooks wait
    try:
        # settled at the PSP, but its webhook has not reached us: no credit
        lost = (await platform.deposit(pid, 2_000)).json()
        await platform.pay(lost["redirect_url"])
        # credited here on a webhook signed with the PSP's key, but the PSP never settled it
        quiet = (await platform.deposit(pid, 400)).json()
        ack = await platform.webhook(platform.forge("payment.succeeded", quiet["psp_reference"]))
        assert ack.status_code == 200 and ack.json()["outcome"] == "applied", ack.text
        await platform.until(pid, quiet["reference"], credited=True)
        # in the report, unknown to us: a session opened at the PSP under a reference we never issued
        stranger = str(uuid.uuid4())
        outsider = build(psp, platform.sim.connection(psp))
        try:
            session = await outsider.create_payment(PaymentRequest(
                reference=stranger, player_id=str(uuid.uuid4()), amount=500, currency="EUR",
                return_url="https://elsewhere.example/back", expires_at=datetime.now(UTC) + timedelta(hours=1)))
        finally:
            await outsider.aclose()
        await platform.pay(session.redirect_url)
        run = await platform.reconcile(today)
    finally:
        await platform.delivery(paused=False)
    found = sorted((m["kind"], m["reference"]) for m in run["mismatches"])
    assert found == sorted([("missing-credit", lost["reference"]), ("amount-mismatch", differs["reference"]),
                            ("currency-mismatch", other_currency["reference"]),
                            ("double-credit", twice["reference"]), ("missing-in-report", quiet["reference"]),
                            # the stranger's deposit, and the fee the PSP charged on it (no player to book it on)
                            ("unknown-reference", stranger), ("unknown-reference", stranger)])
    assert good["reference"] not in {m["reference"] for m in run["mismatches"]}
    assert gauge(psp) == 7
    listed = await platform.client.get("/internal/payments/reconciliation/mismatches",
                                       params={"day": today.isoformat()}, headers=platform.staff("finance"))
    assert sorted(m["reference"] for m in listed.json()) == sorted(r for _, r in found)
    # the PSP's delivery resumes and the lost webhook arrives: the re-run no longer lists it
    await platform.until(pid, lost["reference"], state="succeeded", credited=True)
    run = await platform.reconcile(today)
    assert lost["reference"] not in {m["reference"] for m in run["mismatches"]} and gauge(psp) == 6


async def test_reconciliation_needs_a_finance_or_admin_staff_token(platform: Platform) -> None:
    today = datetime.now(UTC).date().isoformat()
    r = await platform.client.post("/internal/payments/reconciliation", params={"day": today},
                                   headers=platform.staff("support"))
    assert r.status_code == 403 and r.json()["type"].endswith("/staff-role-forbidden")
