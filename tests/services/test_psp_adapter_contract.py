"""The contract every PSP adapter must pass (docs/integration/payments.md), run against the real PSP
simulator over HTTP: payments through the hosted page, declines, expiry and a late success, payouts,
chargebacks, refunds, webhook verification (signature, freshness, the other PSP's secret, malformed
input) and the settlement report. A new adapter joins by adding its name to ADAPTERS below."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from psplib import Delivery, Sim, complete_page, eventually, running_psp

from gameplane.payments.adapters.base import (
    PaymentRequest,
    PaymentSession,
    PayoutRequest,
    PspAdapter,
    PspError,
    WebhookEvent,
    WebhookRejected,
    adapter_names,
    build,
)
from gameplane.payments.reconcile_rules import LedgerMovement, PaymentRecord, match
from gameplane.simulators.psp.dialects import sign

ADAPTERS = ("simpsp", "cardgw")
RETURN_URL = "https://casino.example/cashier/return?from=psp"


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[Sim]:
    # Payouts wait for the control API here, so a test decides each one's outcome.
    async with running_psp(payout_delay_seconds=None) as s:
        yield s


@pytest.fixture(params=ADAPTERS)
async def adapter(request: pytest.FixtureRequest, sim: Sim) -> AsyncIterator[PspAdapter]:
    a = build(request.param, sim.connection(request.param))
    yield a
    await a.aclose()


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def payment(amount: int = 2500, currency: str = "EUR", expires_in: float = 900) -> PaymentRequest:
    return PaymentRequest(reference=str(uuid.uuid4()), player_id=str(uuid.uuid4()), amount=amount,
                          currency=currency, return_url=RETURN_URL,
                          expires_at=datetime.now(UTC) + timedelta(seconds=expires_in))


async def webhook(sim: Sim, adapter: PspAdapter, psp_reference: str, kind: str) -> tuple[Delivery, WebhookEvent]:
    def find() -> tuple[Delivery, WebhookEvent] | None:
        for d in sim.receiver.acked(adapter.name):
            if psp_reference.encode() in d.body:
                ev = adapter.parse_webhook(d.body)
                if ev.kind == kind and ev.psp_reference == psp_reference:
                    return d, ev
        return None

    found: tuple[Delivery, WebhookEvent] = await eventually(find, what=f"{kind} webhook for {psp_reference}")
    return found


async def deposit(sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient, amount: int = 2500,
                  card: str = "4242424242424242") -> tuple[PaymentRequest, PaymentSession, WebhookEvent]:
    req = payment(amount)
    session = await adapter.create_payment(req)
    answer = await complete_page(browser, session.redirect_url, card_number=card)
    assert answer.status_code == 303, answer.text
    _, event = await webhook(sim, adapter, session.psp_reference, "payment.succeeded")
    return req, session, event


def test_every_registered_adapter_is_checked_by_this_suite() -> None:
    assert sorted(adapter_names()) == sorted(ADAPTERS)


def test_an_adapter_is_built_only_for_a_known_psp_with_a_real_secret() -> None:
    with pytest.raises(LookupError):
        build("nopsp", {"base_url": "http://x", "secret": "s" * 32, "api_key": "k" * 16})
    with pytest.raises(ValueError):
        build("simpsp", {"base_url": "http://x", "secret": "short", "api_key": "k" * 16})


async def test_a_payment_completed_on_the_hosted_page_arrives_as_a_signed_webhook_that_parses(
        sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient) -> None:
    req = payment(2500)
    session = await adapter.create_payment(req)
    assert session.redirect_url.startswith(f"{sim.url}/pay/")
    assert abs((session.expires_at - req.expires_at).total_seconds()) < 1

    answer = await complete_page(browser, session.redirect_url, card_number="4242 4242 4242 4242")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(RETURN_URL + "&")
    assert "status=succeeded" in answer.headers["location"]

    delivery, event = await webhook(sim, adapter, session.psp_reference, "payment.succeeded")
    adapter.verify_webhook(delivery.headers, delivery.body, datetime.now(UTC))  # no exception: accepted
    assert (event.reference, event.psp_reference, event.amount, event.currency, event.reason) == \
        (req.reference, session.psp_reference, 2500, "EUR", None)
    assert event.event_id and event.method is not None
    assert (event.method.type, event.method.label) == ("card", "VISA ..4242")


async def test_the_same_instrument_keeps_its_fingerprint_and_another_gets_its_own(
        sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient) -> None:
    *_, first = await deposit(sim, adapter, browser, card="4242424242424242")
    *_, again = await deposit(sim, adapter, browser, card="4242424242424242")
    *_, other = await deposit(sim, adapter, browser, card="5555555555554444")
    assert first.method and again.method and other.method
    assert first.method.fingerprint == again.method.fingerprint
    assert other.method.fingerprint != first.method.fingerprint
    assert other.method.label == "MASTERCARD ..4444"
    session = await adapter.create_payment(payment(700))
    assert (await complete_page(browser, session.redirect_url, method="ewallet",
                                wallet_account="Ann@Example.com")).status_code == 303
    _, wallet = await webhook(sim, adapter, session.psp_reference, "payment.succeeded")
    assert wallet.method and (wallet.method.type, wallet.method.label) == ("ewallet", "EWALLET ann@example.com")


async def test_creating_a_payment_twice_with_one_reference_gives_one_session(adapter: PspAdapter) -> None:
    req = payment(1200)
    first, second = await adapter.create_payment(req), await adapter.create_payment(req)
    assert first == second
    with pytest.raises(PspError) as refused:
        await adapter.create_payment(req.model_copy(update={"amount": 1300}))
    assert refused.value.status == 409 and not refused.value.retryable


async def test_a_wrong_api_key_is_refused(sim: Sim, adapter: PspAdapter) -> None:
    wrong = build(adapter.name, {**sim.connection(adapter.name), "api_key": "not-the-key-" + "x" * 8})
    try:
        with pytest.raises(PspError) as refused:
            await wrong.create_payment(payment())
        assert refused.value.status == 401
    finally:
        await wrong.aclose()


@pytest.mark.parametrize(("card", "button", "reason"), [
    ("4000000000000002", "pay", "card-declined"),
    ("4000000000009995", "pay", "insufficient-funds"),
    ("", "cancel", "cancelled"),
])
async def test_a_declined_or_cancelled_payment_ends_in_payment_failed_with_its_reason(
        sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient, card: str, button: str, reason: str) -> None:
    req = payment(4000)
    session = await adapter.create_payment(req)
    answer = await complete_page(browser, session.redirect_url, button=button, card_number=card)
    assert answer.status_code == 303 and "status=failed" in answer.headers["location"]
    delivery, event = await webhook(sim, adapter, session.psp_reference, "payment.failed")
    adapter.verify_webhook(delivery.headers, delivery.body, datetime.now(UTC))
    assert (event.reference, event.amount, event.reason) == (req.reference, 4000, reason)
    assert (await browser.get(session.redirect_url)).status_code == 409  # the page is closed now


async def test_an_unpaid_session_expires_and_money_arriving_late_is_still_reported(
        sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient) -> None:
    req = payment(3300, expires_in=0.5)
    session = await adapter.create_payment(req)
    delivery, expired = await webhook(sim, adapter, session.psp_reference, "payment.expired")
    adapter.verify_webhook(delivery.headers, delivery.body, datetime.now(UTC))
    assert (expired.reference, expired.amount, expired.reason) == (req.reference, 3300, "expired")
    assert (await browser.get(session.redirect_url)).status_code == 409

    async with sim.control() as control:
        late = await control.post(f"/control/payments/{session.psp_reference}/late-success", json={})
    assert late.status_code == 200, late.text
    _, paid = await webhook(sim, adapter, session.psp_reference, "payment.succeeded")
    assert (paid.reference, paid.amount) == (req.reference, 3300)
    rows = await adapter.settlement_report(datetime.now(UTC).date())
    assert [(r.kind, r.amount) for r in rows if r.psp_reference == session.psp_reference] == [("deposit", 3300)]


async def test_a_payout_is_paid_or_fails_by_webhook(sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient) -> None:
    _, _, dep = await deposit(sim, adapter, browser, 9000)
    assert dep.method is not None
    ok = PayoutRequest(reference=str(uuid.uuid4()), player_id=str(uuid.uuid4()), amount=5000, currency="EUR",
                       method=dep.method)
    bad = ok.model_copy(update={"reference": str(uuid.uuid4()), "amount": 1000})
    accepted, refused = await adapter.create_payout(ok), await adapter.create_payout(bad)
    assert accepted.status == refused.status == "pending"
    assert (await adapter.create_payout(ok)) == accepted  # idempotent on our reference
    async with sim.control() as control:
        assert (await control.post(f"/control/payouts/{accepted.psp_reference}", json={"outcome": "paid"})).is_success
        assert (await control.post(f"/control/payouts/{refused.psp_reference}",
                                   json={"outcome": "failed", "reason": "account-closed"})).is_success
    delivery, paid = await webhook(sim, adapter, accepted.psp_reference, "payout.paid")
    adapter.verify_webhook(delivery.headers, delivery.body, datetime.now(UTC))
    assert (paid.reference, paid.amount, paid.currency) == (ok.reference, 5000, "EUR")
    assert paid.method is not None and paid.method.fingerprint == dep.method.fingerprint
    _, failed = await webhook(sim, adapter, refused.psp_reference, "payout.failed")
    assert (failed.reference, failed.amount, failed.reason) == (bad.reference, 1000, "account-closed")


async def test_a_payout_to_an_instrument_that_never_paid_is_refused(adapter: PspAdapter) -> None:
    from gameplane.payments.adapters.base import PaymentMethod

    never = PaymentMethod(type="card", fingerprint="f" * 24, label="VISA ..0000")
    with pytest.raises(PspError) as refused:
        await adapter.create_payout(PayoutRequest(reference=str(uuid.uuid4()), player_id=str(uuid.uuid4()),
                                                  amount=100, currency="EUR", method=never))
    assert refused.value.status == 422


@pytest.mark.parametrize(("kind", "path"), [("chargeback", "/control/chargebacks"), ("refund", "/control/refunds")])
async def test_a_chargeback_or_refund_arrives_as_a_webhook_naming_the_deposit(
        sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient, kind: str, path: str) -> None:
    req, session, _ = await deposit(sim, adapter, browser, 6000)
    async with sim.control() as control:
        made = await control.post(path, json={"psp_reference": session.psp_reference, "amount": 2500,
                                              "reason": "fraudulent"})
        assert made.status_code == 201, made.text
        too_much = await control.post(path, json={"psp_reference": session.psp_reference, "amount": 3501})
        assert too_much.status_code == 409  # only what is left of the payment can be taken back
    delivery, event = await webhook(sim, adapter, made.json()["psp_reference"], kind)
    adapter.verify_webhook(delivery.headers, delivery.body, datetime.now(UTC))
    assert (event.reference, event.amount, event.currency) == (req.reference, 2500, "EUR")
    assert event.psp_reference != session.psp_reference


async def test_webhooks_that_are_not_this_psps_fresh_signed_events_are_rejected_with_their_code(
        sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient) -> None:
    other = next(n for n in ADAPTERS if n != adapter.name)
    _, session, _ = await deposit(sim, adapter, browser, 1500)
    delivery, _ = await webhook(sim, adapter, session.psp_reference, "payment.succeeded")
    now = datetime.now(UTC)
    tolerance = 300

    def code(headers: dict[str, str], body: bytes, at: datetime = now) -> str | None:
        try:
            adapter.verify_webhook(headers, body, at)
        except WebhookRejected as exc:
            return exc.code
        return None

    assert code(delivery.headers, delivery.body) is None  # negative control: the real delivery passes
    tampered = delivery.body.replace(b"1500", b"1501", 1)
    assert tampered != delivery.body
    assert code(delivery.headers, tampered) == "bad-signature"
    assert code(delivery.headers, delivery.body, now + timedelta(seconds=tolerance + 60)) == "stale-webhook"
    assert code(delivery.headers, delivery.body, now - timedelta(seconds=tolerance + 60)) == "stale-webhook"
    stamp = int(now.timestamp())
    other_secret = sim.keys[other]["secret"]
    assert code(sign(adapter.name, other_secret, delivery.body, stamp), delivery.body) == "bad-signature"
    _, other_session, _ = await deposit(sim, build(other, sim.connection(other)), browser, 1500)
    other_delivery = next(d for d in sim.receiver.acked(other) if other_session.psp_reference.encode() in d.body)
    assert code(other_delivery.headers, other_delivery.body) == "bad-signature"
    assert code({}, delivery.body) == "bad-signature"
    garbled = {k: v.replace(str(stamp)[:4], "abcd") if k.lower() in ("x-psp-timestamp", "cardgw-signature") else v
               for k, v in sign(adapter.name, sim.keys[adapter.name]["secret"], delivery.body, stamp).items()}
    assert code(garbled, delivery.body) == "malformed-webhook"
    # Signed correctly but not an event: verification passes, parsing refuses.
    for junk in (b"not json", b'{"id": "x"}', b"[]"):
        assert code(sign(adapter.name, sim.keys[adapter.name]["secret"], junk, stamp), junk) is None
        with pytest.raises(WebhookRejected) as refused:
            adapter.parse_webhook(junk)
        assert refused.value.code == "malformed-webhook"


@pytest.mark.parametrize(("amount", "currency", "fee"), [(1234, "KWD", 18), (500, "JPY", 7), (1, "EUR", 0)])
async def test_amounts_stay_exact_in_minor_units_whatever_the_currencys_decimals(
        sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient, amount: int, currency: str, fee: int) -> None:
    req = payment(amount, currency)
    session = await adapter.create_payment(req)
    assert (await complete_page(browser, session.redirect_url, card_number="4242424242424242")).status_code == 303
    _, event = await webhook(sim, adapter, session.psp_reference, "payment.succeeded")
    assert (event.amount, event.currency) == (amount, currency)
    rows = [r for r in await adapter.settlement_report(datetime.now(UTC).date()) if r.reference == req.reference]
    expected = [("deposit", amount, currency)] + ([("fee", fee, currency)] if fee else [])
    assert sorted((r.kind, r.amount, r.currency) for r in rows) == sorted(expected)


async def test_the_settlement_report_lists_exactly_what_settled_and_reconciles(
        sim: Sim, adapter: PspAdapter, browser: httpx.AsyncClient) -> None:
    day = datetime.now(UTC).date()
    a_req, a, a_ev = await deposit(sim, adapter, browser, 10000)
    d_req, d, _ = await deposit(sim, adapter, browser, 2000)
    declined = await adapter.create_payment(payment(777))
    await complete_page(browser, declined.redirect_url, card_number="4000000000000002")
    await webhook(sim, adapter, declined.psp_reference, "payment.failed")
    assert a_ev.method is not None
    po_ok = PayoutRequest(reference=str(uuid.uuid4()), player_id=a_req.player_id, amount=3000, currency="EUR",
                          method=a_ev.method)
    po_bad = po_ok.model_copy(update={"reference": str(uuid.uuid4()), "amount": 400})
    paid, failed = await adapter.create_payout(po_ok), await adapter.create_payout(po_bad)
    async with sim.control() as control:
        await control.post(f"/control/payouts/{paid.psp_reference}", json={"outcome": "paid"})
        await control.post(f"/control/payouts/{failed.psp_reference}", json={"outcome": "failed"})
        cb = (await control.post("/control/chargebacks", json={"psp_reference": d.psp_reference})).json()
        rf = (await control.post("/control/refunds", json={"psp_reference": a.psp_reference, "amount": 500})).json()
    await webhook(sim, adapter, failed.psp_reference, "payout.failed")
    await webhook(sim, adapter, rf["psp_reference"], "refund")

    ours = {a_req.reference, d_req.reference, po_ok.reference, po_bad.reference}
    rows = [r for r in await adapter.settlement_report(day) if r.reference in ours]
    assert all(r.psp == adapter.name and r.currency == "EUR" for r in rows)
    assert sorted((r.kind, r.reference, r.amount) for r in rows) == sorted([
        ("deposit", a_req.reference, 10000), ("fee", a_req.reference, 150),  # 1.5 % of each deposit
        ("deposit", d_req.reference, 2000), ("fee", d_req.reference, 30),
        ("payout", po_ok.reference, 3000),
        ("chargeback", d_req.reference, 2000),
        ("refund", a_req.reference, 500),
    ])
    by_kind = {(r.kind, r.reference): r.psp_reference for r in rows}
    assert by_kind[("deposit", a_req.reference)] == a.psp_reference
    assert by_kind[("payout", po_ok.reference)] == paid.psp_reference
    assert by_kind[("chargeback", d_req.reference)] == cb["psp_reference"]

    # What payments would hold for the same day, and the wallet's postings: the matcher finds them equal...
    p = adapter.name
    records = [PaymentRecord(p, a_req.reference, a.psp_reference, "deposit", 10000, "EUR", "refunded"),
               PaymentRecord(p, d_req.reference, d.psp_reference, "deposit", 2000, "EUR", "charged_back"),
               PaymentRecord(p, po_ok.reference, paid.psp_reference, "payout", 3000, "EUR", "paid"),
               PaymentRecord(p, po_bad.reference, failed.psp_reference, "payout", 400, "EUR", "failed"),
               PaymentRecord(p, d_req.reference, cb["psp_reference"], "chargeback", 2000, "EUR", "posted"),
               PaymentRecord(p, a_req.reference, rf["psp_reference"], "refund", 500, "EUR", "succeeded")]
    ledger = [LedgerMovement(f"payments:deposit:{a_req.reference}", "deposit", 10000, "EUR"),
              LedgerMovement(f"payments:deposit:{d_req.reference}", "deposit", 2000, "EUR"),
              LedgerMovement(f"payments:withdrawal:{po_ok.reference}", "withdrawal", 3000, "EUR"),
              LedgerMovement(f"payments:chargeback:{cb['psp_reference']}", "chargeback", 2000, "EUR"),
              LedgerMovement(f"payments:refund:{rf['psp_reference']}", "refund", 500, "EUR")]
    assert match(rows, records, ledger) == []
    # ...and a deposit the wallet never credited is found.
    missing = match(rows, records, ledger[1:])
    assert [(m.kind, m.reference) for m in missing] == [("missing-credit", a_req.reference)]
