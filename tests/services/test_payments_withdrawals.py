"""Withdrawals end to end against real wallet, players, Postgres and NATS, paid out by the PSP
simulator through payments' real adapters (each payout's outcome asked of the simulator's control
API, its webhook delivered by the simulator): every path the issue names (success; PSP failure ->
hold voided; KYC-gated; AML-held then released after KYC; risk-denied; risk review decided by
staff or by a risk case; player-cancelled; chargeback), bad requests, and the fail-safe when risk
is down. Money is checked in the wallet, not in payments' own view of it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from paymentslib import Platform, eventually, payments_platform

from gameplane.devtools.testing import stored_events
from gameplane.payments.adapters.base import build

PROBLEM = "https://gameplane.io/problems/"


@pytest.fixture(scope="module")
async def platform(module_service_settings: Any, nats_server: Any):
    async with payments_platform(module_service_settings, nats_server.url) as p:
        yield p


def problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == PROBLEM + slug, r.json()
    return r.json()  # type: ignore[no-any-return]


async def withdraw(p: Platform, pid: uuid.UUID, amount: int, fingerprint: str) -> httpx.Response:
    return await p.client.post("/v1/payments/withdrawals", headers=p.as_player(pid),
                               json={"amount": amount, "currency": "EUR", "method_fingerprint": fingerprint})


async def state_is(p: Platform, pid: uuid.UUID, ref: str, state: str) -> bool:
    return (await p.payment(pid, ref))["state"] == state


async def payout_done(p: Platform, reference: str, outcome: str, reason: str | None = None) -> str:
    """The PSP pays out (or fails) the payout it holds for our `reference`; its event id."""
    po = p.payout_for(reference)
    assert po is not None, f"no payout at the PSP for {reference}"
    await p.control("POST", f"/control/payouts/{po.psp_reference}", json={"outcome": outcome, "reason": reason})
    (event,) = await p.events(po.psp_reference, f"payout.{outcome}")
    return event["event_id"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("psp", ["simpsp", "cardgw"])
async def test_a_withdrawal_is_held_paid_out_and_posted(platform: Platform, psp: str) -> None:
    pid, dep = await platform.funded(10_000, psp=psp)
    r = await withdraw(platform, pid, 4_000, dep["method_fingerprint"])
    assert r.status_code == 201, r.text
    wd = r.json()
    assert wd["state"] == "processing" and wd["psp"] == psp
    bal = await platform.balance(pid)
    assert (bal["cash"], bal["withdrawal_hold"]) == (6_000, 4_000)
    po = platform.payout_for(wd["reference"])
    assert po is not None and (po.amount, po.currency, po.dialect) == (4_000, "EUR", psp)
    assert po.method.fingerprint == dep["method_fingerprint"]  # back to the instrument deposited with
    event_id = await payout_done(platform, wd["reference"], "paid")
    await platform.until(pid, wd["reference"], state="paid", credited=True)
    await eventually(lambda: platform.delivered(event_id))
    dup = await platform.webhook(platform.replay(event_id)[1], psp)  # the PSP delivers it again
    assert dup.status_code == 200 and dup.json()["outcome"] == "duplicate", dup.text

    async def posted() -> bool:
        return (await platform.balance(pid))["withdrawal_hold"] == 0
    await eventually(posted)
    bal = await platform.balance(pid)
    assert (bal["cash"], bal["withdrawal_hold"]) == (6_000, 0)
    moves = await platform.wallet_keys(f"payments:withdrawal:{wd['reference']}")
    assert sorted(m["kind"] for m in moves) == ["withdrawal_hold", "withdrawal_post"]
    events = await stored_events(platform.nats_url, "gameplane.payments.withdrawal_paid",
                                 {"reference": wd["reference"]}, expect=1, timeout=5)
    assert len(events) == 1


@pytest.mark.parametrize("psp", ["simpsp", "cardgw"])
async def test_a_failed_payout_voids_the_hold_and_gives_the_cash_back(platform: Platform, psp: str) -> None:
    pid, dep = await platform.funded(5_000, psp=psp)
    wd = (await withdraw(platform, pid, 5_000, dep["method_fingerprint"])).json()
    assert (await platform.balance(pid))["cash"] == 0
    await payout_done(platform, wd["reference"], "failed", "account-closed")
    await platform.until(pid, wd["reference"], state="failed")

    async def voided() -> bool:
        return (await platform.balance(pid))["withdrawal_hold"] == 0
    await eventually(voided)
    bal = await platform.balance(pid)
    assert (bal["cash"], bal["withdrawal_hold"]) == (5_000, 0)
    view = await platform.payment(pid, wd["reference"])
    assert "account-closed" in view["held_reason"]


async def test_a_payout_the_psp_does_not_take_is_failed_and_voided(platform: Platform) -> None:
    pid, dep = await platform.funded(3_000)
    adapters = platform.payments.state.runtime.state["adapters"]
    real = adapters["simpsp"]
    # the same real adapter, configured for a PSP address where nothing listens (the PSP is down)
    adapters["simpsp"] = build("simpsp", {**platform.sim.connection("simpsp"), "base_url": "http://127.0.0.1:9/simpsp"})
    try:
        wd = (await withdraw(platform, pid, 1_000, dep["method_fingerprint"])).json()
    finally:
        adapters["simpsp"] = real
    assert wd["state"] == "failed" and platform.payout_for(wd["reference"]) is None
    bal = await platform.balance(pid)
    assert (bal["cash"], bal["withdrawal_hold"]) == (3_000, 0)


async def test_withdrawals_go_only_to_a_method_the_player_deposited_with(platform: Platform) -> None:
    pid, _ = await platform.funded(3_000)
    _, other_dep = await platform.funded(3_000, card="5555555555554444")  # another player's own card
    problem(await withdraw(platform, pid, 1_000, "fp-never-seen"), 409, "unknown-method")
    problem(await withdraw(platform, pid, 1_000, other_dep["method_fingerprint"]), 409, "unknown-method")
    assert (await platform.balance(pid))["cash"] == 3_000


async def test_a_withdrawal_beyond_the_cash_is_refused_with_402(platform: Platform) -> None:
    pid, dep = await platform.funded(1_000)
    problem(await withdraw(platform, pid, 1_001, dep["method_fingerprint"]), 402, "insufficient-funds")
    assert (await platform.balance(pid))["cash"] == 1_000


async def test_a_player_whose_identity_was_rejected_cannot_withdraw(platform: Platform) -> None:
    pid, dep = await platform.funded(2_000)
    await platform.kyc(pid, "rejected")
    problem(await withdraw(platform, pid, 500, dep["method_fingerprint"]), 403, "kyc-required")
    assert (await platform.balance(pid))["cash"] == 2_000


async def test_past_the_aml_threshold_a_withdrawal_is_held_until_kyc_then_released(platform: Platform) -> None:
    # mga: EUR 2,000 (200,000 minor) of cumulative deposits and withdrawals
    pid, dep = await platform.funded(199_000)
    below = (await withdraw(platform, pid, 500, dep["method_fingerprint"])).json()
    assert below["state"] == "processing"  # negative control: under the threshold nothing is held
    r = await withdraw(platform, pid, 1_000, dep["method_fingerprint"])
    assert r.status_code == 201, r.text
    held = r.json()
    assert held["state"] == "held" and held["held_reason"].startswith("aml-kyc-required")
    assert (await platform.balance(pid))["withdrawal_hold"] == 1_500
    assert platform.payout_for(held["reference"]) is None
    listed = await platform.client.get("/internal/payments/withdrawals", params={"state": "held"},
                                       headers=platform.staff("support"))
    assert held["id"] in [w["id"] for w in listed.json()]
    mine = await platform.payment(pid, held["reference"])
    assert mine["held_reason"] == held["held_reason"]  # the player sees why
    await platform.kyc(pid, "verified")  # players publishes players.kyc_changed
    await eventually(lambda: state_is(platform, pid, held["reference"], "processing"))
    assert platform.payout_for(held["reference"]) is not None
    await payout_done(platform, held["reference"], "paid")
    await platform.until(pid, held["reference"], state="paid", credited=True)


async def test_a_withdrawal_risk_denies_is_rejected_and_the_hold_voided(platform: Platform) -> None:
    pid, dep = await platform.funded(4_000)
    async with platform.risk_says("deny", "withdrawal"):
        wd = (await withdraw(platform, pid, 2_500, dep["method_fingerprint"])).json()
    assert wd["state"] == "rejected" and wd["held_reason"] == "risk-denied"
    bal = await platform.balance(pid)
    assert (bal["cash"], bal["withdrawal_hold"]) == (4_000, 0)
    (decided,) = await platform.risk_decisions(pid, "withdrawal")
    assert decided["decision"]["decision"] == "deny" and decided["request"]["reference"] == wd["reference"]
    assert decided["request"]["method_fingerprint"] == dep["method_fingerprint"]


async def test_a_reviewed_withdrawal_is_decided_on_its_risk_case_not_by_staff_in_payments(
        platform: Platform) -> None:
    pid, dep = await platform.funded(4_000)
    async with platform.risk_says("review", "withdrawal"):
        wd = (await withdraw(platform, pid, 1_000, dep["method_fingerprint"])).json()
    assert wd["state"] == "review"
    case = await platform.risk_case(wd["reference"])
    url = f"/internal/payments/withdrawals/{wd['id']}/approve"
    problem(await platform.client.post(url, json={"reason": "looked fine"}, headers=platform.staff("support")),
            403, "staff-role-forbidden")
    # a second path around the case would leave it open in the reviewers' queue, decided elsewhere
    refused = await platform.client.post(url, json={"reason": "looked fine"}, headers=platform.staff("risk"))
    problem(refused, 409, "decided-by-risk-case")
    assert refused.json()["case_id"] == case["case_id"]
    assert (await platform.payment(pid, wd["reference"]))["state"] == "review"
    await platform.decide_case(case["case_id"], "approve")
    await eventually(lambda: state_is(platform, pid, wd["reference"], "processing"))
    audit = await platform.client.get("/internal/payments/audit", headers=platform.staff("admin"),
                                      params={"target": f"payment:{wd['id']}"})
    assert audit.json()["records"] == []  # nothing was decided in payments


async def test_a_risk_case_approval_pays_out_and_a_rejection_voids(platform: Platform) -> None:
    pid, dep = await platform.funded(6_000)
    async with platform.risk_says("review", "withdrawal"):
        a = (await withdraw(platform, pid, 1_000, dep["method_fingerprint"])).json()
        b = (await withdraw(platform, pid, 2_000, dep["method_fingerprint"])).json()
    assert (a["state"], b["state"]) == ("review", "review")
    # an analyst decides the cases risk opened, in risk's back office; risk tells payments
    case_a, case_b = await platform.risk_case(a["reference"]), await platform.risk_case(b["reference"])
    assert (case_a["state"], case_a["amount"], case_b["amount"]) == ("open", 1_000, 2_000)
    await platform.decide_case(case_a["case_id"], "approve")
    await platform.decide_case(case_b["case_id"], "reject")
    await eventually(lambda: state_is(platform, pid, a["reference"], "processing"))
    await eventually(lambda: state_is(platform, pid, b["reference"], "rejected"))
    async def voided() -> bool:
        return (await platform.balance(pid))["withdrawal_hold"] == 1_000
    await eventually(voided)
    assert (await platform.balance(pid))["cash"] == 5_000


async def test_a_player_cancels_a_pending_withdrawal_but_not_one_paid_out(platform: Platform) -> None:
    pid, dep = await platform.funded(4_000)
    async with platform.risk_says("review", "withdrawal"):
        wd = (await withdraw(platform, pid, 3_000, dep["method_fingerprint"])).json()
    case = await platform.risk_case(wd["reference"])
    assert case["state"] == "open"
    r = await platform.client.post(f"/v1/payments/withdrawals/{wd['id']}/cancel", headers=platform.as_player(pid))
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    bal = await platform.balance(pid)
    assert (bal["cash"], bal["withdrawal_hold"]) == (4_000, 0)
    problem(await platform.client.post(f"/v1/payments/withdrawals/{wd['id']}/cancel",
                                       headers=platform.as_player(pid)), 409, "not-cancellable")
    # someone else's withdrawal is no withdrawal of theirs
    stranger = await platform.player()
    problem(await platform.client.post(f"/v1/payments/withdrawals/{wd['id']}/cancel",
                                       headers=platform.as_player(stranger)), 404, "payment-not-found")
    sent = (await withdraw(platform, pid, 1_000, dep["method_fingerprint"])).json()
    assert sent["state"] == "processing"
    problem(await platform.client.post(f"/v1/payments/withdrawals/{sent['id']}/cancel",
                                       headers=platform.as_player(pid)), 409, "not-cancellable")
    events = await stored_events(platform.nats_url, "gameplane.payments.withdrawal_cancelled",
                                 {"reference": wd["reference"]}, expect=1, timeout=5)
    assert len(events) == 1

    # nothing is left to review: risk takes the case out of the reviewers' queue, saying why
    async def withdrawn() -> dict[str, Any] | None:
        c = await platform.risk_case(wd["reference"])
        return c if c["state"] == "withdrawn" else None
    closed = await eventually(withdrawn, what="the case withdrawn")
    assert closed["decided_by"] == "payments" and "cancelled" in closed["reason"]


@pytest.mark.parametrize("psp", ["simpsp", "cardgw"])
async def test_a_chargeback_debits_the_player_through_the_wallet(platform: Platform, psp: str) -> None:
    pid, dep = await platform.funded(5_000, psp=psp)
    cb = await platform.control("POST", "/control/chargebacks",
                                json={"psp_reference": dep["psp_reference"], "amount": 2_000})

    async def debited() -> bool:
        return (await platform.balance(pid))["cash"] == 3_000
    await eventually(debited, what="the chargeback debited")
    moves = await platform.wallet_keys(f"payments:chargeback:{cb['psp_reference']}")
    assert len(moves) == 1, moves
    await eventually(lambda: platform.delivered(cb["event_id"]))
    again = await platform.webhook(platform.replay(cb["event_id"])[1], psp)  # delivered again
    assert again.json()["outcome"] == "duplicate" and (await platform.balance(pid))["cash"] == 3_000


async def test_with_risk_down_small_deposits_go_on_large_are_refused_and_withdrawals_wait(
        service_settings: Any, nats_server: Any) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing answers
    async with payments_platform(service_settings, nats_server.url, risk_failsafe_max_deposit=5_000,
                                 risk_timeout_seconds=0.2) as p:
        p.payments.state.runtime.settings.endpoints["risk"] = dead
        pid = await p.player()
        problem(await p.deposit(pid, 5_001), 503, "risk-unavailable")
        r = await p.deposit(pid, 5_000)
        assert r.status_code == 201, r.text
        await p.pay(r.json()["redirect_url"])
        dep = await p.until(pid, r.json()["reference"], state="succeeded", credited=True)
        assert (await p.balance(pid))["cash"] == 5_000
        wd = (await withdraw(p, pid, 1_000, dep["method_fingerprint"])).json()
        assert wd["state"] == "review" and wd["held_reason"].startswith("risk-unavailable")
        assert p.payout_for(wd["reference"]) is None
        # no case exists for it (risk was not there to open one): staff decide it here, audited
        url = f"/internal/payments/withdrawals/{wd['id']}/approve"
        r = await p.client.post(url, json={"reason": "risk was down; checked by hand"}, headers=p.staff("risk"))
        assert r.status_code == 200 and r.json()["state"] == "processing", r.text
        problem(await p.client.post(url, json={"reason": "again"}, headers=p.staff("risk")), 409, "not-decidable")
        audit = await p.client.get("/internal/payments/audit", headers=p.staff("admin"),
                                   params={"target": f"payment:{wd['id']}"})
        assert [a["action"] for a in audit.json()["records"]] == ["payments.withdrawal.approve"]


async def test_where_every_withdrawal_needs_kyc_an_unverified_player_is_refused_until_verified(
        platform: Platform) -> None:
    settings = platform.payments.state.runtime.settings
    settings.withdrawal_requires_kyc = True
    try:
        pid, dep = await platform.funded(2_000)
        problem(await withdraw(platform, pid, 500, dep["method_fingerprint"]), 403, "kyc-required")
        assert (await platform.balance(pid))["withdrawal_hold"] == 0
        await platform.kyc(pid, "verified")
        r = await withdraw(platform, pid, 500, dep["method_fingerprint"])
        assert r.status_code == 201 and r.json()["state"] == "processing", r.text
    finally:
        settings.withdrawal_requires_kyc = False


async def _interrupted(p: Platform, pid: uuid.UUID, dep: dict[str, Any], amount: int, **row: Any) -> str:
    """A withdrawal as a payments process left it when it died mid-request (written straight into
    payments' table), its wallet hold placed under the withdrawal's key."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from gameplane.devtools.identities import dev_identities
    from gameplane.payments.models import payments

    ref = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=20) as http:
        r = await http.post(p.urls["wallet"] + "/internal/wallet/withdrawals",
                            headers=dev_identities().bearer("payments", "wallet"),
                            json={"idempotency_key": f"payments:withdrawal:{ref}", "player_id": str(pid),
                                  "currency": "EUR", "amount": amount})
        assert r.status_code == 200, r.text
    stale = datetime.now(UTC) - timedelta(minutes=5)
    async with p.payments.state.runtime.database.transaction() as s:
        await s.execute(insert(payments).values(
            id=uuid.uuid4(), reference=ref, kind="withdrawal", player_id=pid, amount=amount, currency="EUR",
            psp=dep["psp"], method_fingerprint=dep["method_fingerprint"], method_type="card", method_label="VISA",
            created_at=stale, updated_at=stale, **row))
    return ref


async def test_a_withdrawal_interrupted_before_its_hold_was_recorded_is_rolled_back(platform: Platform) -> None:
    pid, dep = await platform.funded(5_000)
    ref = await _interrupted(platform, pid, dep, 1_000, state="pending", wallet_pending="hold")
    assert (await platform.balance(pid))["withdrawal_hold"] == 1_000
    await eventually(lambda: state_is(platform, pid, ref, "rejected"))

    async def voided() -> bool:
        bal = await platform.balance(pid)
        return (bal["cash"], bal["withdrawal_hold"]) == (5_000, 0)
    await eventually(voided)
    assert platform.payout_for(ref) is None


async def test_a_payout_interrupted_before_the_psp_answered_is_sent_again(platform: Platform) -> None:
    pid, dep = await platform.funded(5_000)
    ref = await _interrupted(platform, pid, dep, 2_000, state="processing")
    from sqlalchemy import update

    from gameplane.payments.models import payments
    hold = (await platform.wallet_keys(f"payments:withdrawal:{ref}"))
    assert [m["kind"] for m in hold] == ["withdrawal_hold"]
    # the hold id as the wallet gave it, which the dead process had recorded
    async with httpx.AsyncClient(timeout=20) as http:
        from gameplane.devtools.identities import dev_identities
        r = await http.post(platform.urls["wallet"] + "/internal/wallet/withdrawals",
                            headers=dev_identities().bearer("payments", "wallet"),
                            json={"idempotency_key": f"payments:withdrawal:{ref}", "player_id": str(pid),
                                  "currency": "EUR", "amount": 2_000})
        hold_id = r.json()["hold_id"]
    async with platform.payments.state.runtime.database.transaction() as s:
        await s.execute(update(payments).where(payments.c.reference == ref).values(hold_id=uuid.UUID(hold_id)))

    async def sent() -> bool:
        return platform.payout_for(ref) is not None
    await eventually(sent)
    await payout_done(platform, ref, "paid")
    await platform.until(pid, ref, state="paid", credited=True)
    bal = await platform.balance(pid)
    assert (bal["cash"], bal["withdrawal_hold"]) == (3_000, 0)
