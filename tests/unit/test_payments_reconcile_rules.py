"""The reconciliation matcher: every kind of disagreement between the PSP's settlement report, our
payment records and the wallet's ledger is named, and agreement gives an empty list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from gameplane.payments.adapters.base import SettlementRow
from gameplane.payments.reconcile_rules import FeeBooking, LedgerMovement, PaymentRecord, fee_bookings, match

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def row(kind: str, ref: str, psp_ref: str, amount: int = 1000, currency: str = "EUR") -> SettlementRow:
    return SettlementRow(psp="simpsp", psp_reference=psp_ref, reference=ref, kind=kind,  # type: ignore[arg-type]
                         amount=amount, currency=currency, settled_at=AT)


def rec(kind: str, ref: str, psp_ref: str, amount: int = 1000, currency: str = "EUR",
        state: str = "succeeded") -> PaymentRecord:
    return PaymentRecord("simpsp", ref, psp_ref, kind, amount, currency, state)  # type: ignore[arg-type]


def mv(key: str, amount: int = 1000, currency: str = "EUR", kind: str = "deposit") -> LedgerMovement:
    return LedgerMovement(key, kind, amount, currency)


def clean_day() -> tuple[list[SettlementRow], list[PaymentRecord], list[LedgerMovement]]:
    report = [row("deposit", "r1", "p1"), row("payout", "r2", "p2", 400), row("chargeback", "r1", "cb1"),
              row("refund", "r3", "rf1", 250), row("fee", "", "fee1", 30)]
    records = [rec("deposit", "r1", "p1", state="charged_back"), rec("payout", "r2", "p2", 400, state="paid"),
               rec("chargeback", "r1", "cb1", state="posted"), rec("refund", "r3", "rf1", 250)]
    ledger = [mv("payments:deposit:r1"), mv("payments:withdrawal:r2", 400, kind="withdrawal"),
              mv("payments:chargeback:cb1", kind="chargeback"), mv("payments:refund:rf1", 250, kind="refund")]
    return report, records, ledger


def kinds(found: list) -> list[tuple[str, str]]:
    return [(m.kind, m.reference) for m in found]


def test_a_day_where_report_records_and_ledger_agree_has_no_mismatch() -> None:
    assert match(*clean_day()) == []


def test_fee_rows_are_not_payments_and_need_no_record() -> None:
    report = [row("fee", "", "fee9", 99)]
    assert match(report, [], []) == []


def test_a_settled_deposit_never_credited_is_a_missing_credit() -> None:
    report, records, ledger = clean_day()
    ledger = [m for m in ledger if m.idempotency_key != "payments:deposit:r1"]
    assert kinds(match(report, records, ledger)) == [("missing-credit", "r1")]


def test_a_deposit_still_pending_here_but_settled_at_the_psp_is_a_missing_credit() -> None:
    found = match([row("deposit", "r1", "p1")], [rec("deposit", "r1", "p1", state="pending")], [])
    assert kinds(found) == [("missing-credit", "r1")]
    assert "pending" in found[0].detail


def test_two_records_credited_for_one_psp_payment_are_a_double_credit() -> None:
    report = [row("deposit", "r1", "p1")]
    records = [rec("deposit", "r1", "p1"), rec("deposit", "r1b", "p1")]
    ledger = [mv("payments:deposit:r1"), mv("payments:deposit:r1b")]
    assert [m.kind for m in match(report, records, ledger)] == ["double-credit"]


def test_a_row_listed_twice_in_the_report_is_flagged() -> None:
    report = [row("deposit", "r1", "p1"), row("deposit", "r1", "p1")]
    found = match(report, [rec("deposit", "r1", "p1")], [mv("payments:deposit:r1")])
    assert kinds(found) == [("double-credit", "r1")]


def test_a_different_amount_in_the_record_is_an_amount_mismatch() -> None:
    found = match([row("deposit", "r1", "p1", 1000)], [rec("deposit", "r1", "p1", 999)], [mv("payments:deposit:r1")])
    assert kinds(found) == [("amount-mismatch", "r1")]


def test_a_different_amount_posted_to_the_ledger_is_an_amount_mismatch() -> None:
    found = match([row("deposit", "r1", "p1", 1000)], [rec("deposit", "r1", "p1", 1000)],
                  [mv("payments:deposit:r1", 1001)])
    assert kinds(found) == [("amount-mismatch", "r1")]
    assert "ledger" in found[0].detail


def test_a_different_currency_is_one_currency_mismatch_when_record_and_ledger_agree() -> None:
    found = match([row("deposit", "r1", "p1", currency="EUR")], [rec("deposit", "r1", "p1", currency="GBP")],
                  [mv("payments:deposit:r1", currency="GBP")])
    assert [m.kind for m in found] == ["currency-mismatch"]


def test_record_and_ledger_both_off_from_the_report_and_each_other_are_two_mismatches() -> None:
    found = match([row("deposit", "r1", "p1", 1000)], [rec("deposit", "r1", "p1", 999)],
                  [mv("payments:deposit:r1", 998)])
    assert [m.kind for m in found] == ["amount-mismatch", "amount-mismatch"]
    assert "record" in found[0].detail and "ledger" in found[1].detail


def test_a_settlement_we_have_no_record_of_is_an_unknown_reference() -> None:
    found = match([row("deposit", "zz", "p404")], [], [])
    assert kinds(found) == [("unknown-reference", "zz")]
    assert found[0].psp_reference == "p404"


def test_a_ledger_movement_without_a_payment_record_is_an_unknown_reference() -> None:
    found = match([], [], [mv("payments:deposit:ghost")])
    assert kinds(found) == [("unknown-reference", "ghost")]


def test_a_settled_record_absent_from_the_report_is_missing_in_report() -> None:
    report, records, ledger = clean_day()
    report = [r for r in report if r.kind != "payout"]
    assert kinds(match(report, records, ledger)) == [("missing-in-report", "r2")]


def test_unsettled_records_are_not_expected_in_the_report() -> None:
    records = [rec("deposit", "r1", "p1", state="pending"), rec("payout", "r2", "p2", state="failed"),
               rec("deposit", "r3", "p3", state="expired")]
    assert match([], records, []) == []


def test_a_payout_is_matched_on_the_withdrawal_key_not_the_deposit_key() -> None:
    found = match([row("payout", "r2", "p2")], [rec("payout", "r2", "p2", state="paid")],
                  [mv("payments:deposit:r2")])
    # The movement is under the wrong key: the payout was never posted and the movement is unexplained.
    assert kinds(found) == [("missing-credit", "r2"), ("unknown-reference", "r2")]


ALICE, BOB = uuid.UUID(int=1), uuid.UUID(int=2)


def test_each_fee_row_is_booked_on_the_player_of_its_payment_under_its_own_key() -> None:
    report = [row("deposit", "r1", "p1"), row("fee", "r1", "fee1", 15), row("fee", "r2", "fee2", 7, "GBP")]
    bookings, wrong = fee_bookings(report, {"r1": ALICE, "r2": BOB})
    assert wrong == []
    assert bookings == [FeeBooking("simpsp", "fee1", "r1", ALICE, 15, "EUR"),
                        FeeBooking("simpsp", "fee2", "r2", BOB, 7, "GBP")]
    assert [b.key for b in bookings] == ["fee:simpsp:fee1", "fee:simpsp:fee2"]


def test_a_fee_on_an_unknown_payment_or_on_none_is_a_mismatch_not_a_booking() -> None:
    report = [row("fee", "r9", "fee9", 40), row("fee", "", "fee0", 12), row("fee", "r1", "fee1", 15)]
    bookings, wrong = fee_bookings(report, {"r1": ALICE})
    assert [b.psp_reference for b in bookings] == ["fee1"]
    assert [(m.kind, m.reference, m.psp_reference) for m in wrong] == [
        ("unknown-reference", "r9", "fee9"), ("unknown-reference", "fee0", "fee0")]


def test_a_fee_row_listed_twice_is_booked_once_and_listed() -> None:
    report = [row("fee", "r1", "fee1", 15), row("fee", "r1", "fee1", 15)]
    bookings, wrong = fee_bookings(report, {"r1": ALICE})
    assert len(bookings) == 1 and kinds(wrong) == [("double-credit", "r1")]
