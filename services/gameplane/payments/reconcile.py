"""Reconciliation I/O: each PSP's settlement report for a day, our payment records and the wallet's
movements under payments' keys, compared by the pure matcher (gameplane.payments.reconcile_rules);
the report's fee rows booked on the wallet (each once, attributed to the payment's player); the
day's mismatches replace the previous run's and set the open-mismatches gauge."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta

from pydantic import ValidationError
from sqlalchemy import and_, cast, delete, insert, or_, select
from sqlalchemy.types import Date

from gameplane.contracts import payments as c
from gameplane.contracts import wallet as w
from gameplane.kit.app import Runtime
from gameplane.kit.http import DependencyError
from gameplane.payments import clients, metrics
from gameplane.payments.adapters.base import SettlementRow
from gameplane.payments.flows import adapter_of, now_of
from gameplane.payments.models import chargebacks, mismatches, payments
from gameplane.payments.reconcile_rules import (
    FeeBooking,
    LedgerMovement,
    Mismatch,
    PaymentRecord,
    fee_bookings,
    ledger_key,
    match,
)

log = logging.getLogger("gameplane.payments.reconcile")


def ledger_movement(item: dict[str, object]) -> LedgerMovement | None:
    """A wallet transaction under one of payments' keys, as the matcher reads it: the deposit and
    the chargeback under their own keys, a payout as the post of its hold (under the hold's key)."""
    key, kind = str(item["idempotency_key"]), str(item["kind"])
    amount, currency = int(item["amount"]), str(item["currency"])  # type: ignore[call-overload]
    if key.startswith("payments:withdrawal:"):
        if not key.endswith(":post"):
            return None  # the hold and a void move nothing out of the platform
        return LedgerMovement(key.removesuffix(":post"), kind, amount, currency)
    return LedgerMovement(key, kind, amount, currency)


async def _orphans(rt: Runtime, moves: list[LedgerMovement]) -> list[LedgerMovement]:
    """Movements under payments' keys that no payment or chargeback record explains."""
    refs = {m.idempotency_key.split(":", 2)[2] for m in moves}
    if not refs:
        return []
    async with rt.database.session() as s:
        known = set((await s.execute(select(payments.c.reference).where(payments.c.reference.in_(refs)))).scalars())
        known |= set((await s.execute(select(chargebacks.c.psp_reference).where(
            chargebacks.c.psp_reference.in_(refs)))).scalars())
    return [m for m in moves if m.idempotency_key.split(":", 2)[2] not in known]


FEE_CALLS = 8  # fee bookings in flight at once (one report can hold a fee per deposit of the day)


async def book_fees(rt: Runtime, psp: str, report: list[SettlementRow]) -> tuple[int, list[Mismatch]]:
    """Book every fee row of the report on the wallet (its key makes a re-run a replay): how many
    are booked, and the rows that are not (listed twice, charged on no payment of ours, booked
    before with other terms, or refused by the wallet otherwise). A wallet that does not answer
    fails the run (DependencyError): it is safe to run again."""
    refs = {r.reference for r in report if r.kind == "fee" and r.reference}
    players: dict[str, uuid.UUID] = {}
    if refs:
        async with rt.database.session() as s:
            players = dict((await s.execute(select(payments.c.reference, payments.c.player_id).where(
                and_(payments.c.psp == psp, payments.c.reference.in_(refs))))).tuples().all())
    bookings, wrong = fee_bookings(report, players)
    gate = asyncio.Semaphore(FEE_CALLS)

    async def book(fee: FeeBooking) -> Mismatch | None:
        what = f"fee {fee.psp_reference} of {fee.amount} {fee.currency}"
        try:
            body = w.FeeRequest(idempotency_key=fee.key, player_id=fee.player_id, currency=fee.currency,
                                amount=fee.amount, psp=fee.psp, psp_reference=fee.psp_reference,
                                payment_reference=fee.reference)
        except ValidationError as exc:  # e.g. beyond the currency's bound: a row no booking can take
            return Mismatch("missing-credit", fee.reference, f"{what} cannot be booked: {exc.errors()[0]['msg']}",
                            fee.psp, fee.psp_reference)
        async with gate:
            r = await clients.wallet_call(rt, w.PATH_FEES, body.model_dump(mode="json"))
        if r.status_code == 200:
            return None
        if r.status_code >= 500:
            raise DependencyError("wallet", f"fee answered {r.status_code}")
        if clients.slug(r) == "duplicate-transaction":
            return Mismatch("amount-mismatch", fee.reference, f"{what}: booked before with other terms (the "
                            f"booking stands)", fee.psp, fee.psp_reference)
        if clients.slug(r) == "not-found":  # a wallet of a release before 0010, during a roll
            return Mismatch("missing-credit", fee.reference, f"{what}: the wallet has no fee route yet; "
                            f"re-run once it is upgraded", fee.psp, fee.psp_reference)
        return Mismatch("missing-credit", fee.reference, f"{what}: the wallet refused it "
                        f"({clients.slug(r) or r.status_code}: {r.text[:200]})", fee.psp, fee.psp_reference)

    refused = [m for m in await asyncio.gather(*map(book, bookings)) if m is not None]
    return len(bookings) - len(refused), wrong + refused


async def reconcile_day(rt: Runtime, day: date, psps: list[str] | None = None) -> c.ReconciliationRun:
    names = psps or sorted(rt.state["adapters"])
    start = datetime.combine(day, time(), tzinfo=UTC)
    items = await clients.movements(rt, "payments:", (start - timedelta(days=1)).isoformat(),
                                    (start + timedelta(days=3)).isoformat())
    ledger = [(m, datetime.fromisoformat(str(i["created_at"]))) for i in items
              if (m := ledger_movement(i)) is not None]
    orphans = await _orphans(rt, [m for m, at in ledger if at.date() == day])
    total_rows = total_records = total_fees = 0
    found_at = now_of(rt)
    out: list[c.MismatchView] = []
    for psp in names:
        report = await adapter_of(rt, psp).settlement_report(day)
        refs = {r.reference for r in report}
        async with rt.database.session() as s:
            rows = (await s.execute(select(payments).where(and_(payments.c.psp == psp, or_(
                cast(payments.c.settled_at, Date) == day, payments.c.reference.in_(refs or {""})))))).mappings().all()
            cbs = (await s.execute(select(chargebacks, payments.c.reference).join(
                payments, payments.c.id == chargebacks.c.payment_id).where(and_(
                    chargebacks.c.psp == psp, or_(cast(chargebacks.c.created_at, Date) == day,
                                                  payments.c.reference.in_(refs or {""})))))).mappings().all()
        records = [PaymentRecord(psp=psp, reference=r["reference"], psp_reference=r["psp_reference"],
                                 kind="deposit" if r["kind"] == "deposit" else "payout", amount=r["amount"],
                                 currency=r["currency"], state=r["state"]) for r in rows]
        records += [PaymentRecord(psp=psp, reference=cb["reference"], psp_reference=cb["psp_reference"],
                                  kind="chargeback", amount=cb["amount"], currency=cb["currency"],
                                  state="succeeded" if cb["state"] == "posted" else "pending") for cb in cbs]
        # The wallet's movements span a few days around this one (a late webhook is posted after
        # its day): the matcher sees those of this PSP's records and report rows, plus, with the
        # first PSP, the movements of this day that no payment record of any PSP explains.
        keys = {ledger_key(r.kind, r.reference, r.psp_reference) for r in records}
        keys |= {ledger_key(r.kind, r.reference, r.psp_reference) for r in report if r.kind != "fee"}
        mine = [m for m, _ in ledger if m.idempotency_key in keys]
        if psp == names[0]:
            mine += orphans
        found = match(report, records, mine)
        booked, fee_problems = await book_fees(rt, psp, report)
        found += fee_problems
        total_fees += booked
        async with rt.database.transaction() as s:
            await s.execute(delete(mismatches).where(and_(mismatches.c.day == day, mismatches.c.psp == psp)))
            for m in found:
                await s.execute(insert(mismatches).values(day=day, psp=psp, kind=m.kind, reference=m.reference,
                                                          detail=m.detail, found_at=found_at))
            stored = (await s.execute(select(mismatches).where(and_(mismatches.c.day == day, mismatches.c.psp == psp))
                                      .order_by(mismatches.c.id))).mappings().all()
        metrics.MISMATCHES.labels(psp).set(len(found))
        out += [view(m) for m in stored]
        total_rows += len(report)
        total_records += len(records)
    return c.ReconciliationRun(day=day.isoformat(), report_rows=total_rows, records=total_records,
                               movements=len(ledger), fees=total_fees, mismatches=out)


def view(m: dict[str, object]) -> c.MismatchView:
    return c.MismatchView(id=m["id"], day=str(m["day"]), kind=m["kind"], reference=m["reference"],  # type: ignore[arg-type]
                          detail=m["detail"], found_at=m["found_at"])  # type: ignore[arg-type]


async def reconcile_yesterday(rt: Runtime) -> None:
    """The scheduled job (gameplane.kit.periodic): yesterday's books; a re-run replaces the day's list."""
    await reconcile_day(rt, now_of(rt).date() - timedelta(days=1))
