"""The deposit and withdrawal flows and the PSP webhook state machine.

Exactly once: a webhook is stored under (psp, event id) in the transaction that moves the
payment's state and records the wallet call it now owes (`wallet_pending`); the wallet call
carries a key derived from our reference (`payments:deposit:<reference>` ...), so repeating it
can never move money twice; the row's `wallet_pending` is cleared, and the event published,
by one guarded UPDATE after the wallet answered. A crash anywhere in between leaves
`wallet_pending` set, and the sweeper (or the PSP's retry of the webhook) finishes the job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import payments as c
from gameplane.contracts import wallet as w
from gameplane.contracts.jurisdiction import profile
from gameplane.kit.app import Runtime
from gameplane.kit.http import DependencyError
from gameplane.kit.outbox import publish, staged
from gameplane.kit.problems import Problem, ProblemType
from gameplane.payments import clients, metrics, rules, store
from gameplane.payments.adapters.base import (
    PaymentMethod,
    PaymentRequest,
    PayoutRequest,
    PspAdapter,
    WebhookEvent,
    WebhookRejected,
)
from gameplane.payments.models import chargebacks, payment_methods, payments, webhooks
from gameplane.payments.settings import PaymentsSettings

log = logging.getLogger("gameplane.payments")
PRODUCER = "payments"
Clock = Callable[[], datetime]


def settings_of(rt: Runtime) -> PaymentsSettings:
    return rt.settings  # type: ignore[return-value]


def now_of(rt: Runtime) -> datetime:
    clock: Clock = rt.state.get("clock") or (lambda: datetime.now(UTC))
    return clock()


def adapter_of(rt: Runtime, psp: str) -> PspAdapter:
    adapters: dict[str, PspAdapter] = rt.state["adapters"]
    if psp not in adapters:
        raise c.UNKNOWN_PSP(f"no payment provider {psp!r}; connected: {', '.join(sorted(adapters)) or 'none'}")
    return adapters[psp]


def _event_fields(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {"payment_id": row["id"], "reference": row["reference"], "player_id": row["player_id"],
            "amount": row["amount"], "currency": row["currency"], "psp": row["psp"],
            "method_fingerprint": row["method_fingerprint"], "at": now}


def _risk_body(kind: str, row: Mapping[str, Any], ip: str | None, device_id: str | None) -> dict[str, Any]:
    return {"kind": kind, "player_id": str(row["player_id"]), "amount": row["amount"], "currency": row["currency"],
            "reference": row["reference"], "method_fingerprint": row["method_fingerprint"], "ip": ip,
            "device_id": device_id}


def _same_currency(who: clients.Player, currency: str) -> None:
    """Money in and out only in the account's currency: a deposit the wallet would refuse to credit
    after the PSP took it must not start."""
    if currency != who.currency:
        raise c.CURRENCY_MISMATCH(f"the player's account is in {who.currency}, not {currency}",
                                  account_currency=who.currency)


# ---- deposits ---------------------------------------------------------------------------------

async def create_deposit(rt: Runtime, player_id: uuid.UUID, body: c.DepositCreate, *, ip: str | None = None,
                         device_id: str | None = None) -> c.PaymentView:
    settings = settings_of(rt)
    adapter = adapter_of(rt, body.psp)
    allowance = await clients.deposit_allowance(rt, player_id, body.currency)
    if allowance is not None and not allowance.allowed:
        raise c.DEPOSIT_NOT_ALLOWED(f"deposits are refused now: {allowance.reason}", reason=allowance.reason,
                                    remaining=allowance.remaining)
    if allowance is not None and allowance.remaining is not None and body.amount > allowance.remaining:
        raise c.DEPOSIT_NOT_ALLOWED(f"the deposit limit leaves {allowance.remaining}", reason="deposit-limit",
                                    remaining=allowance.remaining)
    who = await clients.player(rt, player_id)
    _same_currency(who, body.currency)
    now = now_of(rt)
    if rules.age_on(who.date_of_birth, now.date()) < profile(settings.jurisdiction).minimum_age:
        raise c.UNDERAGE("the player is below the minimum age of this jurisdiction")
    if who.kyc_state == "rejected":
        raise c.KYC_REQUIRED("the player's identity check was rejected", kyc_state=who.kyc_state)
    reference = str(uuid.uuid4())
    row = {"id": uuid.uuid4(), "reference": reference, "kind": "deposit", "state": "pending",
           "player_id": player_id, "amount": body.amount, "currency": body.currency, "psp": body.psp,
           "method_fingerprint": None, "created_at": now, "updated_at": now,
           "expires_at": now + timedelta(seconds=settings.deposit_ttl_seconds)}
    decision = await clients.risk_decision(rt, _risk_body("deposit", row, ip, device_id),
                                           settings.risk_timeout_seconds)
    if decision is None:
        metrics.RISK_FAILSAFE.labels("deposit").inc()
        if not rules.failsafe_deposit_allowed(body.amount, settings.risk_failsafe_max_deposit):
            cap = settings.risk_failsafe_max_deposit
            raise c.RISK_UNAVAILABLE(f"risk checks are unavailable; deposits up to {cap} go on meanwhile",
                                     headers={"Retry-After": "30"}, limit=cap)
    elif decision.decision != "allow":
        raise c.RISK_DENIED("this deposit cannot be accepted now", decision=decision.decision)
    async with rt.database.transaction() as s:
        await s.execute(insert(payments).values(**row, risk_decision=decision.decision if decision else "failsafe"))
        await publish(s, c.DepositStarted(**_event_fields(row, now)), producer=PRODUCER)
    return_url = (settings.return_url.replace("{reference}", reference) if settings.return_url
                  else f"{settings.public_url.rstrip('/')}/v1/payments?reference={reference}")
    try:
        session = await adapter.create_payment(PaymentRequest(
            reference=reference, player_id=str(player_id), amount=body.amount, currency=body.currency,
            return_url=return_url, expires_at=row["expires_at"]))
    except Exception as exc:
        log.warning("PSP %s refused a payment session: %s", body.psp, exc)
        async with rt.database.transaction() as s:
            current = await store.get(s, row["id"], lock=True)
            if current is not None and current["state"] == "pending":
                await store.change(s, row["id"], now, state="failed", held_reason="psp-unavailable")
                await publish(s, c.DepositFailed(**_event_fields(row, now), reason="psp-unavailable"),
                              producer=PRODUCER)
        raise c.PSP_UNAVAILABLE(f"{body.psp} did not open a payment session", headers={"Retry-After": "5"}) from None
    async with rt.database.transaction() as s:
        await s.execute(update(payments).where(payments.c.id == row["id"]).values(
            psp_reference=func.coalesce(payments.c.psp_reference, session.psp_reference),
            redirect_url=session.redirect_url, expires_at=session.expires_at))
        current = await store.get(s, row["id"])
    assert current is not None
    metrics.PAYMENTS.labels("deposit", "started").inc()
    return store.view(current)


# ---- webhooks ---------------------------------------------------------------------------------

_REJECTED: dict[str, ProblemType] = {"bad-signature": c.WEBHOOK_BAD_SIGNATURE, "stale-webhook": c.WEBHOOK_STALE,
                                     "malformed-webhook": c.WEBHOOK_MALFORMED}


async def _refuse(rt: Runtime, psp: str, kind: ProblemType, detail: str, body: bytes, now: datetime,
                  ev: WebhookEvent | None = None) -> Problem:
    await store.reject_webhook(rt.database, psp, kind.slug, detail, body, now,
                               event_id=ev.event_id if ev else None, reference=ev.reference if ev else None)
    metrics.WEBHOOK_REJECTIONS.labels(psp if psp in rt.state["adapters"] else "unknown", kind.slug).inc()
    return kind(detail)


def _disagreement(row: Mapping[str, Any] | None, ev: WebhookEvent, psp: str) -> tuple[ProblemType, str] | None:
    if row is None:
        return c.WEBHOOK_UNKNOWN_REFERENCE, f"no payment with reference {ev.reference!r}"
    if row["psp"] != psp:
        return c.WEBHOOK_MISMATCH, f"payment {ev.reference} was made through {row['psp']}, not {psp}"
    wants = "withdrawal" if ev.kind.startswith("payout.") else "deposit"
    if row["kind"] != wants:
        return c.WEBHOOK_MISMATCH, f"{ev.kind} for a {row['kind']}"
    if ev.currency != row["currency"]:
        return c.WEBHOOK_MISMATCH, f"currency {ev.currency}, the payment is in {row['currency']}"
    if ev.kind in ("chargeback", "refund"):
        if not 0 < ev.amount <= row["amount"]:
            return c.WEBHOOK_MISMATCH, f"{ev.kind} of {ev.amount} on a payment of {row['amount']}"
        return None
    if ev.amount != row["amount"]:
        return c.WEBHOOK_MISMATCH, f"amount {ev.amount}, the payment is {row['amount']}"
    if row["psp_reference"] is not None and ev.psp_reference != row["psp_reference"]:
        return c.WEBHOOK_MISMATCH, f"PSP reference {ev.psp_reference}, the payment has {row['psp_reference']}"
    return None


async def handle_webhook(rt: Runtime, psp: str, headers: Mapping[str, str], body: bytes) -> c.WebhookAck:
    now = now_of(rt)
    if psp not in rt.state["adapters"]:
        raise await _refuse(rt, psp, c.UNKNOWN_PSP, f"no payment provider {psp!r}", body, now)
    adapter = rt.state["adapters"][psp]
    try:
        adapter.verify_webhook(headers, body, now)
        ev = adapter.parse_webhook(body)
    except WebhookRejected as exc:
        raise await _refuse(rt, psp, _REJECTED.get(exc.code, c.WEBHOOK_MALFORMED), str(exc), body, now) from None
    except Exception as exc:  # an adapter that cannot read what it verified: the PSP's fault, not ours
        raise await _refuse(rt, psp, c.WEBHOOK_MALFORMED, f"unreadable: {exc}", body, now) from None
    refusal: tuple[ProblemType, str] | None = None
    outcome = "applied"
    fast = await _webhook_fast(rt, psp, ev, now) if ev.kind == "payment.succeeded" else None
    if fast is not None:
        outcome, row = fast
        return await _after_webhook(rt, psp, ev, outcome, row)
    async with rt.database.transaction() as s:
        row = await store.by_reference(s, ev.reference, lock=True)
        refusal = _disagreement(row, ev, psp)
        if refusal is None:
            assert row is not None
            fresh = (await s.execute(pg_insert(webhooks).values(
                psp=psp, event_id=ev.event_id, kind=ev.kind, reference=ev.reference, outcome="applied",
                received_at=now).on_conflict_do_nothing().returning(webhooks.c.id))).first()
            if fresh is None:
                outcome = "duplicate"
            else:
                outcome, row = await _apply(s, row, ev, now)
                if outcome != "applied":
                    await s.execute(update(webhooks).where(webhooks.c.id == fresh[0]).values(outcome=outcome))
            state = row["state"]
    if refusal is not None:
        raise await _refuse(rt, psp, refusal[0], refusal[1], body, now, ev)
    assert row is not None
    return await _after_webhook(rt, psp, ev, outcome, row, state)


async def _after_webhook(rt: Runtime, psp: str, ev: WebhookEvent, outcome: str, row: Mapping[str, Any],
                         state: str | None = None) -> c.WebhookAck:
    """The webhook is stored (and the payment moved): make the wallet call it owes, if any."""
    metrics.WEBHOOKS.labels(psp, ev.kind, outcome).inc()
    state = state or row["state"]
    try:
        if ev.kind == "chargeback":
            await settle_chargeback(rt, psp, ev.psp_reference)
        elif outcome == "applied" or row["wallet_pending"] is not None:
            # a repeat read the row under its lock after the first delivery committed: if that one
            # has not cleared the wallet call yet (in flight, or it crashed), the repeat makes it too
            await settle(rt, row["id"], row if outcome == "applied" else None)
    except (DependencyError, Problem) as exc:
        # stored and owed: the sweeper finishes it; the PSP need not retry
        log.warning("wallet call for %s deferred to the sweeper: %s", ev.reference, exc)
    return c.WebhookAck(event_id=ev.event_id, outcome=outcome, state=state)  # type: ignore[arg-type]


# The common webhook, a payment's success, on bare asyncpg (Database.pool): SQLAlchemy's
# per-statement work was most of a webhook's CPU. Same statements as the general path below.
_LOCK_PAYMENT = "SELECT * FROM payments WHERE reference = $1 FOR UPDATE"
_STORE_WEBHOOK = ("INSERT INTO webhooks (psp, event_id, kind, reference, outcome, received_at) "
                  "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id")
_SUCCEEDED = (
    "WITH m AS (INSERT INTO payment_methods (player_id, fingerprint, psp, type, label, first_seen) "
    "  SELECT CAST($2 AS uuid), CAST($7 AS text), CAST($3 AS text), CAST($8 AS text), CAST($9 AS text), "
    "  CAST($4 AS timestamptz) WHERE $7 IS NOT NULL ON CONFLICT DO NOTHING) "
    "UPDATE payments SET state = 'succeeded', updated_at = $4, settled_at = $4, wallet_pending = 'credit', "
    " late = $5, held_reason = NULL, psp_reference = COALESCE(psp_reference, $6), "
    " method_fingerprint = COALESCE($7, method_fingerprint), method_type = COALESCE($8, method_type), "
    " method_label = COALESCE($9, method_label) "
    "WHERE id = $1 RETURNING *")


async def _webhook_fast(rt: Runtime, psp: str, ev: WebhookEvent, now: datetime
                        ) -> tuple[str, Mapping[str, Any]] | None:
    """A `payment.succeeded` stored and applied in one transaction: (outcome, the payment row as
    committed). None, with nothing changed, when it is not the common case (no such payment, a
    disagreement to refuse and record, a payout): the general path below answers it."""
    async with rt.database.pool.acquire() as con, con.transaction():
        row = await con.fetchrow(_LOCK_PAYMENT, ev.reference)
        if row is None or _disagreement(row, ev, psp) is not None:
            return None  # rolled back: the general path refuses it and keeps the record
        nxt = rules.next_state(ev.kind, row["kind"], row["state"])
        if nxt is not None and nxt != "succeeded":
            return None
        fresh = await con.fetchval(_STORE_WEBHOOK, psp, ev.event_id, ev.kind, ev.reference,
                                   "applied" if nxt else "ignored", now)
        if fresh is None:
            return "duplicate", row
        if nxt is None:
            return "ignored", row
        m = ev.method
        after = await con.fetchrow(_SUCCEEDED, row["id"], row["player_id"], row["psp"], now, row["state"] != "pending",
                                   ev.psp_reference, m.fingerprint if m else None, m.type if m else None,
                                   m.label if m else None)
        assert after is not None
        return "applied", after


async def _apply(s: AsyncSession, row: RowMapping, ev: WebhookEvent, now: datetime) -> tuple[str, RowMapping]:
    if ev.kind == "chargeback":
        done = (await s.execute(pg_insert(chargebacks).values(
            psp=row["psp"], psp_reference=ev.psp_reference, payment_id=row["id"], player_id=row["player_id"],
            amount=ev.amount, currency=ev.currency, state="pending", created_at=now)
            .on_conflict_do_nothing().returning(chargebacks.c.psp))).first()
        return ("applied" if done else "duplicate"), row
    nxt = rules.next_state(ev.kind, row["kind"], row["state"])
    if nxt is None:
        return "ignored", row
    values: dict[str, Any] = {"state": nxt}
    if row["psp_reference"] is None:
        values["psp_reference"] = ev.psp_reference
    fields = _event_fields(row, now)
    if nxt == "succeeded":
        values.update(settled_at=now, wallet_pending="credit", late=row["state"] != "pending", held_reason=None)
        if ev.method is not None:
            values.update(method_fingerprint=ev.method.fingerprint, method_type=ev.method.type,
                          method_label=ev.method.label)
            await s.execute(pg_insert(payment_methods).values(
                player_id=row["player_id"], fingerprint=ev.method.fingerprint, psp=row["psp"], type=ev.method.type,
                label=ev.method.label, first_seen=now).on_conflict_do_nothing())
    elif nxt in ("failed", "expired") and row["kind"] == "deposit":
        values["held_reason"] = ev.reason or nxt
        await publish(s, c.DepositFailed(**fields, reason=ev.reason or nxt), producer=PRODUCER)
    elif nxt == "paid":
        values.update(settled_at=now, wallet_pending="post")
    elif nxt == "failed":
        values.update(wallet_pending="void", held_reason=f"payout failed: {ev.reason or 'no reason given'}")
    after = (await s.execute(update(payments).where(payments.c.id == row["id"])
                             .values(updated_at=now, **values).returning(*payments.c))).mappings().one()
    return "applied", after


# ---- settling the wallet call a payment owes --------------------------------------------------

async def settle(rt: Runtime, payment_id: uuid.UUID, row: Mapping[str, Any] | None = None) -> None:
    """Make the wallet call the payment owes, then clear it and publish, once. `row`: the payment as
    the caller just committed it (saves reading it again)."""
    if row is None:
        async with rt.database.session() as s:
            row = await store.get(s, payment_id)
    if row is None or row["wallet_pending"] is None:
        return
    op, ref = row["wallet_pending"], row["reference"]
    credited = row["credited"]
    extra: dict[str, Any] = {}
    if op == "credit":
        r = await clients.wallet_call(rt, w.PATH_DEPOSITS, {
            "idempotency_key": c.deposit_key(ref), "player_id": str(row["player_id"]), "currency": row["currency"],
            "amount": row["amount"], "psp": row["psp"], "psp_reference": row["psp_reference"]})
        if r.status_code == 200:
            credited = True
        elif r.status_code < 500:
            # Money the PSP holds that the wallet will not take (e.g. self-excluded meanwhile): kept
            # visible for the back office and reconciliation (missing-credit), never retried blindly.
            extra["held_reason"] = f"credit refused by the wallet: {clients.slug(r)}"
            metrics.CREDIT_REFUSED.inc()
        else:
            raise DependencyError("wallet", f"deposit answered {r.status_code}")
    elif op in ("post", "void"):
        if row["hold_id"] is None and op == "post":
            # paid out with no hold recorded: never mark it posted without the wallet having moved it
            log.error("payment %s was paid out but has no wallet hold; left owed for the back office", ref)
            return
        if row["hold_id"] is not None:
            path = (w.PATH_WITHDRAWAL_POST if op == "post" else w.PATH_WITHDRAWAL_VOID).format(hold_id=row["hold_id"])
            r = await clients.wallet_call(rt, path, {"idempotency_key": f"{c.withdrawal_key(ref)}:{op}"})
            if r.status_code >= 500:
                raise DependencyError("wallet", f"{op} answered {r.status_code}")
            if r.status_code != 200:
                # closed already (expired, voided): nothing is left to move
                log.warning("wallet %s of hold %s answered %s: %s", op, row["hold_id"], r.status_code, r.text[:200])
                extra["held_reason"] = f"{row['held_reason'] or ''} (wallet {op}: {clients.slug(r)})".strip()
            credited = op == "post" and r.status_code == 200
    else:
        return  # "hold" is placed by the request that created the withdrawal (or the sweeper's recovery)
    now = now_of(rt)
    if op == "credit" and credited and not extra:
        await _credited(rt, row, now)
        return
    async with rt.database.transaction() as s:
        done = (await s.execute(update(payments).where(and_(payments.c.id == payment_id,
                                                            payments.c.wallet_pending == op))
                                .values(wallet_pending=None, credited=credited, updated_at=now, **extra)
                                .returning(*payments.c))).mappings().first()
        if done is None:
            return  # a concurrent settle got there first and published
        fields = _event_fields(done, now)
        if op == "credit" and credited:
            await publish(s, c.DepositSucceeded(**fields, late=done["late"]), producer=PRODUCER, notify=False)
            _count_credit(done, now)
        elif op == "post":
            await publish(s, c.WithdrawalPaid(**fields), producer=PRODUCER)
            metrics.PAYMENTS.labels("withdrawal", "paid").inc()
        elif op == "void" and done["state"] == "cancelled":
            await publish(s, c.WithdrawalCancelled(**fields), producer=PRODUCER)
            metrics.PAYMENTS.labels("withdrawal", "cancelled").inc()
        elif op == "void":
            await publish(s, c.WithdrawalFailed(**fields, reason=done["held_reason"] or done["state"]),
                          producer=PRODUCER)
            metrics.PAYMENTS.labels("withdrawal", done["state"]).inc()


_CREDITED = (
    "WITH d AS (UPDATE payments SET wallet_pending = NULL, credited = true, updated_at = $2 "
    "  WHERE id = $1 AND wallet_pending = 'credit' RETURNING id), "
    "o AS (INSERT INTO outbox (id, subject, headers, payload) "
    "  SELECT CAST($3 AS uuid), CAST($4 AS text), CAST($5 AS jsonb), CAST($6 AS jsonb) FROM d) "
    "SELECT count(*) FROM d")


async def _credited(rt: Runtime, row: Mapping[str, Any], now: datetime) -> None:
    """The wallet credited the deposit: clear what it owed and stage deposit_succeeded, both or
    neither, in one statement (a concurrent settle that got there first leaves nothing to do).
    The event's fields are the row's, which this update does not change."""
    event = c.DepositSucceeded(**_event_fields(row, now), late=row["late"])
    ev = staged(event, producer=PRODUCER)
    async with rt.database.pool.acquire() as con:
        done = await con.fetchval(_CREDITED, row["id"], now, ev["id"], ev["subject"], ev["headers"], ev["payload"])
    if done:
        _count_credit(row, now)


def _count_credit(row: Mapping[str, Any], now: datetime) -> None:
    metrics.PAYMENTS.labels("deposit", "credited").inc()
    metrics.DEPOSIT_CREDIT_SECONDS.observe(max(0.0, (now - row["created_at"]).total_seconds()))


async def settle_chargeback(rt: Runtime, psp: str, psp_reference: str) -> None:
    async with rt.database.session() as s:
        cb = (await s.execute(select(chargebacks).where(and_(chargebacks.c.psp == psp,
                                                             chargebacks.c.psp_reference == psp_reference))
                              )).mappings().first()
    if cb is None or cb["state"] != "pending":
        return
    r = await clients.wallet_call(rt, clients.PATH_CHARGEBACKS, {
        "idempotency_key": c.chargeback_key(psp_reference), "player_id": str(cb["player_id"]),
        "currency": cb["currency"], "amount": cb["amount"], "psp": psp, "psp_reference": psp_reference})
    if r.status_code != 200:
        # 404 not-found: the wallet's chargeback route (ledger helper) is not there yet; kept pending
        raise DependencyError("wallet", f"chargeback answered {r.status_code}: {r.text[:200]}")
    now = now_of(rt)
    async with rt.database.transaction() as s:
        done = (await s.execute(update(chargebacks).where(and_(
            chargebacks.c.psp == psp, chargebacks.c.psp_reference == psp_reference, chargebacks.c.state == "pending"))
            .values(state="posted").returning(chargebacks.c.payment_id))).first()
        if done is None:
            return
        row = await store.get(s, done[0])
        assert row is not None
        fields = {**_event_fields(row, now), "amount": cb["amount"]}
        await publish(s, c.Chargeback(**fields, psp_reference=psp_reference), producer=PRODUCER)
        metrics.PAYMENTS.labels("deposit", "chargeback").inc()


# ---- withdrawals ------------------------------------------------------------------------------

async def _aml_cumulative(s: AsyncSession, player_id: uuid.UUID, currency: str) -> int:
    q = select(func.coalesce(func.sum(payments.c.amount), 0)).where(and_(
        payments.c.player_id == player_id, payments.c.currency == currency,
        ((payments.c.kind == "deposit") & payments.c.state.in_(("succeeded",)))
        | ((payments.c.kind == "withdrawal")
           & payments.c.state.in_(("pending", "held", "review", "approved", "processing", "paid")))))
    return int((await s.execute(q)).scalar_one())


AML_REASON = "aml-kyc-required: cumulative payments passed the AML threshold; verify your identity to continue"


async def create_withdrawal(rt: Runtime, player_id: uuid.UUID, body: c.WithdrawalCreate, *, ip: str | None = None,
                            device_id: str | None = None) -> c.PaymentView:
    settings = settings_of(rt)
    async with rt.database.session() as s:
        method = (await s.execute(select(payment_methods).where(and_(
            payment_methods.c.player_id == player_id, payment_methods.c.fingerprint == body.method_fingerprint))
        )).mappings().first()
        cumulative = await _aml_cumulative(s, player_id, body.currency)
    if method is None:
        raise c.UNKNOWN_METHOD("this player never deposited with that payment method")
    adapter_of(rt, method["psp"])
    who = await clients.player(rt, player_id)
    _same_currency(who, body.currency)
    prof = profile(settings.jurisdiction)
    gate = rules.withdrawal_gate(who.kyc_state, rules.AmlState(prof.kyc_aml_threshold_minor,
                                                               prof.kyc_aml_threshold_currency,
                                                               cumulative + body.amount),
                                 kyc_always=settings.withdrawal_requires_kyc)
    if gate in ("kyc-rejected", "kyc-required"):
        raise c.KYC_REQUIRED("withdrawals need a verified identity", kyc_state=who.kyc_state, gate=gate)
    now = now_of(rt)
    reference = str(uuid.uuid4())
    row = {"id": uuid.uuid4(), "reference": reference, "kind": "withdrawal", "state": "pending",
           "player_id": player_id, "amount": body.amount, "currency": body.currency, "psp": method["psp"],
           "method_fingerprint": method["fingerprint"], "method_type": method["type"],
           "method_label": method["label"], "wallet_pending": "hold", "created_at": now, "updated_at": now}
    async with rt.database.transaction() as s:
        await s.execute(insert(payments).values(**row))
    r = await clients.wallet_call(rt, w.PATH_WITHDRAWALS, {
        "idempotency_key": c.withdrawal_key(reference), "player_id": str(player_id), "currency": body.currency,
        "amount": body.amount})
    if r.status_code >= 500:
        raise DependencyError("wallet", f"hold answered {r.status_code}")
    if r.status_code != 200:
        async with rt.database.transaction() as s:
            await store.change(s, row["id"], now, state="rejected", wallet_pending=None,
                               held_reason=f"wallet refused the hold: {clients.slug(r)}")
        if r.status_code == 402:
            raise c.INSUFFICIENT_FUNDS("not enough cash to withdraw this amount", balance=r.json().get("balance"))
        raise Problem(r.status_code, clients.slug(r) or "refused", "Wallet refused the withdrawal", r.text[:300])
    hold_id = uuid.UUID(r.json()["hold_id"])
    held = gate == "aml-kyc-required"
    async with rt.database.transaction() as s:
        await store.change(s, row["id"], now, hold_id=hold_id, wallet_pending=None,
                           **({"state": "held", "held_reason": AML_REASON} if held else {}))
        await publish(s, c.WithdrawalRequested(**_event_fields(row, now)), producer=PRODUCER)
    metrics.PAYMENTS.labels("withdrawal", "requested").inc()
    if not held:
        await advance(rt, row["id"], ip=ip, device_id=device_id)
    async with rt.database.session() as s:
        current = await store.get(s, row["id"])
    assert current is not None
    return store.view(current)


async def advance(rt: Runtime, payment_id: uuid.UUID, *, ip: str | None = None, device_id: str | None = None) -> None:
    """A checked withdrawal (state pending, hold placed) to risk, then to the payout."""
    async with rt.database.session() as s:
        row = await store.get(s, payment_id)
    if row is None or row["state"] != "pending" or row["hold_id"] is None:
        return
    decision = await clients.risk_decision(rt, _risk_body("withdrawal", row, ip, device_id),
                                           settings_of(rt).risk_timeout_seconds)
    now = now_of(rt)
    async with rt.database.transaction() as s:
        row = await store.get(s, payment_id, lock=True)
        if row is None or row["state"] != "pending":
            return
        if decision is None:
            metrics.RISK_FAILSAFE.labels("withdrawal").inc()
            await store.change(s, payment_id, now, state="review", risk_decision="failsafe",
                               held_reason="risk-unavailable: waiting for a manual review")
        elif decision.decision == "deny":
            await store.change(s, payment_id, now, state="rejected", risk_decision="deny", wallet_pending="void",
                               held_reason="risk-denied")
        elif decision.decision == "review":
            await store.change(s, payment_id, now, state="review", risk_decision="review",
                               risk_case_id=decision.case_id, held_reason="risk-review")
        else:
            await store.change(s, payment_id, now, state="approved", risk_decision="allow", held_reason=None)
    await settle(rt, payment_id)
    await payout(rt, payment_id)


async def payout(rt: Runtime, payment_id: uuid.UUID, *, resend: bool = False) -> None:
    """Send an approved withdrawal to the PSP (`resend`: again, for one stuck in processing; the PSP
    is idempotent on our reference)."""
    now = now_of(rt)
    async with rt.database.transaction() as s:
        row = await store.get(s, payment_id, lock=True)
        if row is None or row["state"] != ("processing" if resend else "approved"):
            return
        await store.change(s, payment_id, now, state="processing")
    adapter = adapter_of(rt, row["psp"])
    method = PaymentMethod(type=row["method_type"], fingerprint=row["method_fingerprint"],
                           label=row["method_label"])
    try:
        accepted = await adapter.create_payout(PayoutRequest(
            reference=row["reference"], player_id=str(row["player_id"]), amount=row["amount"],
            currency=row["currency"], method=method))
    except Exception as exc:
        log.warning("PSP %s refused payout %s: %s", row["psp"], row["reference"], exc)
        async with rt.database.transaction() as s:
            cur = await store.get(s, payment_id, lock=True)
            if cur is not None and cur["state"] == "processing" and cur["psp_reference"] is None:
                await store.change(s, payment_id, now_of(rt), state="failed", wallet_pending="void",
                                   held_reason=f"payout refused by {row['psp']}")
        await settle(rt, payment_id)
        return
    async with rt.database.transaction() as s:
        await s.execute(update(payments).where(payments.c.id == payment_id).values(
            psp_reference=func.coalesce(payments.c.psp_reference, accepted.psp_reference)))


async def cancel(rt: Runtime, player_id: uuid.UUID, payment_id: uuid.UUID) -> c.PaymentView:
    now = now_of(rt)
    async with rt.database.transaction() as s:
        row = await store.get(s, payment_id, lock=True)
        if row is None or row["player_id"] != player_id or row["kind"] != "withdrawal":
            raise c.PAYMENT_NOT_FOUND(f"no withdrawal {payment_id}")
        if row["state"] not in rules.CANCELLABLE or row["hold_id"] is None:
            raise c.NOT_CANCELLABLE(f"the withdrawal is {row['state']}", state=row["state"])
        await store.change(s, payment_id, now, state="cancelled", wallet_pending="void",
                           held_reason="cancelled by the player")
    await _settle_quietly(rt, payment_id)
    async with rt.database.session() as s:
        cur = await store.get(s, payment_id)
    assert cur is not None
    return store.view(cur)


async def decide(rt: Runtime, payment_id: uuid.UUID, approve: bool, reason: str) -> tuple[RowMapping, RowMapping]:
    """A staff member's decision on a held withdrawal, or on one in review without a risk case."""
    now = now_of(rt)
    async with rt.database.transaction() as s:
        before = await store.get(s, payment_id, lock=True)
        if before is None or before["kind"] != "withdrawal":
            raise c.PAYMENT_NOT_FOUND(f"no withdrawal {payment_id}")
        if before["state"] not in rules.DECIDABLE:
            raise c.NOT_DECIDABLE(f"the withdrawal is {before['state']}", state=before["state"])
        if before["state"] == "review" and before["risk_case_id"] is not None:
            # one place decides a review: the case (audited in risk, which tells payments); staff
            # here decide holds, and reviews that have no case (risk was down when it was asked)
            raise c.DECIDED_BY_RISK_CASE(f"case {before['risk_case_id']} is open at risk",
                                         case_id=str(before["risk_case_id"]))
        if approve:
            await store.change(s, payment_id, now, state="approved", held_reason=None)
        else:
            await store.change(s, payment_id, now, state="rejected", wallet_pending="void",
                               held_reason=f"rejected: {reason}")
        after = await store.get(s, payment_id)
    assert after is not None
    return before, after


async def after_decision(rt: Runtime, payment_id: uuid.UUID) -> None:
    await _settle_quietly(rt, payment_id)
    await payout(rt, payment_id)


async def _settle_quietly(rt: Runtime, payment_id: uuid.UUID) -> None:
    try:
        await settle(rt, payment_id)
    except (DependencyError, Problem) as exc:
        log.warning("wallet call for payment %s deferred to the sweeper: %s", payment_id, exc)


# ---- the sweeper: whatever a crash or an outage left half done ---------------------------------

STUCK = timedelta(seconds=30)


async def sweep_once(rt: Runtime) -> int:
    now = now_of(rt)
    done = 0
    async with rt.database.session() as s:
        owed = list((await s.execute(select(payments.c.id, payments.c.wallet_pending, payments.c.updated_at)
                                     .where(payments.c.wallet_pending.is_not(None)).limit(500))).all())
        expired = list((await s.execute(select(payments.c.id).where(and_(
            payments.c.kind == "deposit", payments.c.state == "pending", payments.c.expires_at < now)).limit(500)
        )).scalars())
        resumed = list((await s.execute(select(payments.c.id).where(and_(
            payments.c.kind == "withdrawal", payments.c.state == "pending", payments.c.hold_id.is_not(None),
            payments.c.wallet_pending.is_(None))).limit(100))).scalars())
        approved = list((await s.execute(select(payments.c.id).where(payments.c.state == "approved").limit(100)
                                         )).scalars())
        stuck = list((await s.execute(select(payments.c.id).where(and_(
            payments.c.state == "processing", payments.c.psp_reference.is_(None),
            payments.c.updated_at < now - STUCK)).limit(100))).scalars())
        cbs = list((await s.execute(select(chargebacks.c.psp, chargebacks.c.psp_reference)
                                    .where(chargebacks.c.state == "pending").limit(100))).all())
    for pid, op, updated in owed:
        try:
            if op == "hold":
                if updated < now - STUCK:
                    await _recover_hold(rt, pid)
            else:
                await settle(rt, pid)
            done += 1
        except (DependencyError, Problem) as exc:
            log.info("payment %s still owes %s: %s", pid, op, exc)
    for pid in expired:
        async with rt.database.transaction() as s:
            row = await store.get(s, pid, lock=True)
            if row is not None and row["state"] == "pending" and row["expires_at"] < now:
                await store.change(s, pid, now, state="expired", held_reason="expired")
                await publish(s, c.DepositFailed(**_event_fields(row, now), reason="expired"), producer=PRODUCER)
                done += 1
    for pid in resumed:
        await advance(rt, pid)
    for pid in approved:
        await payout(rt, pid)
    for pid in stuck:
        await payout(rt, pid, resend=True)
    for psp, ref in cbs:
        try:
            await settle_chargeback(rt, psp, ref)
        except (DependencyError, Problem) as exc:
            log.info("chargeback %s still pending: %s", ref, exc)
    await prune_webhooks(rt, now)
    return done


# the oldest rows by id (ids grow with arrival): a sweep with nothing to prune reads one batch of
# the primary key, never the whole table
_PRUNE_WEBHOOKS = text(
    "DELETE FROM webhooks WHERE id IN (SELECT id FROM webhooks ORDER BY id LIMIT :n) AND received_at < :before")


async def prune_webhooks(rt: Runtime, now: datetime, batch: int = 5000) -> int:
    """Forget the dedupe records past the retention, a batch per sweep (every replica sweeps; the
    deletes are idempotent). Returns how many went."""
    days = settings_of(rt).webhook_retention_days
    async with rt.database.transaction() as s:
        gone = (await s.execute(_PRUNE_WEBHOOKS, {"before": now - timedelta(days=days), "n": batch})).rowcount
    if gone:
        log.info("pruned %d webhook records older than %d days", gone, days)
    return int(gone or 0)


async def _recover_hold(rt: Runtime, payment_id: uuid.UUID) -> None:
    """A withdrawal whose creator died between recording it and placing its hold: the hold call is
    repeated under the same key (placing it, or finding the one placed), then voided."""
    async with rt.database.session() as s:
        row = await store.get(s, payment_id)
    if row is None or row["wallet_pending"] != "hold":
        return
    r = await clients.wallet_call(rt, w.PATH_WITHDRAWALS, {
        "idempotency_key": c.withdrawal_key(row["reference"]), "player_id": str(row["player_id"]),
        "currency": row["currency"], "amount": row["amount"]})
    if r.status_code >= 500:
        raise DependencyError("wallet", f"hold answered {r.status_code}")
    hold_id = uuid.UUID(r.json()["hold_id"]) if r.status_code == 200 else None
    async with rt.database.transaction() as s:
        await store.change(s, payment_id, now_of(rt), state="rejected", hold_id=hold_id,
                           wallet_pending="void" if hold_id else None, held_reason="interrupted; please try again")
    await settle(rt, payment_id)


async def release_kyc_held(s: AsyncSession, player_id: uuid.UUID, now: datetime) -> int:
    """KYC verified: the player's AML-held withdrawals go on to risk (the sweeper advances them)."""
    res = await s.execute(update(payments).where(and_(
        payments.c.player_id == player_id, payments.c.kind == "withdrawal", payments.c.state == "held",
        payments.c.held_reason == AML_REASON)).values(state="pending", held_reason=None, updated_at=now))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]
