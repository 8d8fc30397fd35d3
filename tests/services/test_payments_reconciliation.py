"""Reconciliation: the PSP's settlement report against payments' records and the wallet's ledger,
clean when the books agree, and each kind of disagreement found when they do not (each one made
by a real divergence: a report row nobody knows, a different amount, a settled payment whose
webhook never came, a payment we settled that the report lacks)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from paymentslib import Platform, payments_platform
from prometheus_client import REGISTRY

from gameplane.payments.adapters.base import SettlementRow


@pytest.fixture
async def platform(service_settings: Any, nats_server: Any):
    async with payments_platform(service_settings, nats_server.url, psp_name=f"rec{uuid.uuid4().hex[:6]}") as p:
        yield p


def gauge(psp: str) -> float | None:
    return REGISTRY.get_sample_value("gameplane_payments_reconciliation_mismatches", {"psp": psp})


async def test_a_day_of_deposits_and_payouts_reconciles_clean(platform: Platform) -> None:
    today = datetime.now(UTC).date()
    pid, dep = await platform.funded(9_000)
    await platform.funded(1_500)
    wd = (await platform.client.post("/v1/payments/withdrawals", headers=platform.as_player(pid), json={
        "amount": 2_000, "currency": "EUR", "method_fingerprint": dep["method_fingerprint"]})).json()
    await platform.webhook(platform.psp.event("payout.paid", wd["reference"]))
    run = await platform.reconcile(today)
    assert run["mismatches"] == [] and run["report_rows"] == 3 and run["records"] == 3
    assert gauge(platform.psp.name) == 0


async def test_every_disagreement_is_listed_and_counted(platform: Platform) -> None:
    today = datetime.now(UTC).date()
    psp = platform.psp
    _, good = await platform.funded(1_000)
    pid = await platform.player()
    # settled at the PSP, but its webhook never reached us: no credit
    lost = (await platform.deposit(pid, 2_000)).json()["reference"]
    psp.event("payment.succeeded", lost)
    # credited here, but the PSP's report shows another amount
    _, differs = await platform.funded(3_000)
    row = next(r for r in psp.settled if r.reference == differs["reference"])
    psp.settled[psp.settled.index(row)] = SettlementRow(psp=psp.name, psp_reference=row.psp_reference,
                                                        reference=row.reference, kind="deposit", amount=3_100,
                                                        currency="EUR", settled_at=row.settled_at)
    # credited here, absent from the report
    quiet = (await platform.deposit(pid, 400)).json()["reference"]
    assert (await platform.webhook(psp.event("payment.succeeded", quiet, settle=False))).status_code == 200
    # in the report, unknown to us
    stranger = str(uuid.uuid4())
    psp.settled.append(SettlementRow(psp=psp.name, psp_reference="pay_unknown", reference=stranger, kind="deposit",
                                     amount=500, currency="EUR", settled_at=datetime.now(UTC)))
    run = await platform.reconcile(today)
    found = sorted((m["kind"], m["reference"]) for m in run["mismatches"])
    assert found == sorted([("missing-credit", lost), ("amount-mismatch", differs["reference"]),
                            ("missing-in-report", quiet), ("unknown-reference", stranger)])
    assert good["reference"] not in {m["reference"] for m in run["mismatches"]}
    assert gauge(psp.name) == 4
    listed = await platform.client.get("/internal/payments/reconciliation/mismatches",
                                       params={"day": today.isoformat()}, headers=platform.staff("finance"))
    assert sorted(m["reference"] for m in listed.json()) == sorted(r for _, r in found)
    # the lost webhook arrives after all (the PSP retried): the re-run no longer lists it
    await platform.webhook(psp.event("payment.succeeded", lost, settle=False))
    run = await platform.reconcile(today)
    assert lost not in {m["reference"] for m in run["mismatches"]} and gauge(psp.name) == 3


async def test_reconciliation_needs_a_finance_or_admin_staff_token(platform: Platform) -> None:
    today = datetime.now(UTC).date().isoformat()
    r = await platform.client.post("/internal/payments/reconciliation", params={"day": today},
                                   headers=platform.staff("support"))
    assert r.status_code == 403 and r.json()["type"].endswith("/staff-role-forbidden")
