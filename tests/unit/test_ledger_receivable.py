"""Pure rules of chargebacks and the receivable (docs/reference/ledger.md), and the deposit headroom
the deposit-allowance route reports."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplane.wallet import ledger, protection
from gameplane.wallet.ledger import Posting, Recovery, Ref
from gameplane.wallet.protection import Limit

P = uuid.UUID("00000000-0000-0000-0000-000000000002")
amounts = st.integers(min_value=0, max_value=10**12)


def by_account(postings: list[Posting]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for p in postings:
        out[("player" if p.ref.is_player else "platform", p.ref.kind)] += p.amount
    return dict(out)


def test_a_chargeback_takes_cash_first_up_to_the_cash_balance() -> None:
    assert ledger.chargeback_split(300, cash=1000) == Recovery(from_cash=300, owed=0)
    assert ledger.chargeback_split(1000, cash=200) == Recovery(from_cash=200, owed=800)
    assert ledger.chargeback_split(50, cash=0) == Recovery(from_cash=0, owed=50)
    with pytest.raises(ValueError):
        ledger.chargeback_split(-1, cash=10)


def test_chargeback_postings_move_cash_and_book_the_shortfall_as_debt() -> None:
    assert by_account(ledger.chargeback(P, "EUR", 200, 800)) == {
        ("player", "cash"): -200, ("player", "receivable"): -800, ("platform", "psp_clearing"): 1000}
    # nothing owed: no receivable entry at all
    assert by_account(ledger.chargeback(P, "EUR", 300, 0)) == {("player", "cash"): -300,
                                                               ("platform", "psp_clearing"): 300}


def test_a_deposit_settles_the_debt_first() -> None:
    assert ledger.settlement(500, owed=800) == 500
    assert ledger.settlement(1000, owed=300) == 300
    assert ledger.settlement(50, owed=0) == 0
    assert by_account(ledger.deposit(P, "EUR", 1000, settle=300)) == {
        ("platform", "psp_clearing"): -1000, ("player", "receivable"): 300, ("player", "cash"): 700}
    assert by_account(ledger.deposit(P, "EUR", 500, settle=500)) == {
        ("platform", "psp_clearing"): -500, ("player", "receivable"): 500}
    with pytest.raises(ValueError):
        ledger.deposit(P, "EUR", 100, settle=101)


@given(amounts, amounts, amounts)
def test_chargeback_then_deposit_balances_and_never_leaves_cash_negative(charge: int, cash: int, dep: int) -> None:
    rec = ledger.chargeback_split(charge, cash)
    assert rec.from_cash + rec.owed == charge and 0 <= rec.from_cash <= cash
    cb = ledger.chargeback(P, "EUR", rec.from_cash, rec.owed)
    settle = ledger.settlement(dep, rec.owed)
    dp = ledger.deposit(P, "EUR", dep, settle=settle)
    for postings in (cb, dp):
        assert sum(p.amount for p in postings) == 0
    bal = defaultdict(int, {("player", "cash"): cash})
    for postings in (cb, dp):
        for k, v in by_account(postings).items():
            bal[k] += v
    assert bal[("player", "cash")] >= 0 and bal[("player", "receivable")] <= 0
    # whatever is still owed means the deposit reached no cash
    assert bal[("player", "receivable")] == 0 or bal[("player", "cash")] == cash - rec.from_cash


def test_the_receivable_is_the_one_player_account_at_or_below_zero() -> None:
    owed = Ref(str(P), "receivable", "EUR")
    cash = Ref(str(P), "cash", "EUR")
    assert ledger.check_non_negative({owed: -500, cash: 0}) == []
    assert [b.invariant for b in ledger.check_non_negative({owed: 1})] == [2]
    assert [b.invariant for b in ledger.check_non_negative({cash: -1})] == [2]
    assert ledger.needs_balance(Posting(owed, 10)) and not ledger.needs_balance(Posting(owed, -10))
    assert ledger.needs_balance(Posting(cash, -10)) and not ledger.needs_balance(Posting(cash, 10))


def test_the_receivable_locks_between_cash_and_the_hold_as_order_by_kind_does() -> None:
    kinds = ["withdrawal_hold", "receivable", "cash", "bonus"]
    postings = [Posting(Ref(str(P), k, "EUR"), 1) for k in kinds] + [Posting(ledger.platform("house", "EUR"), -4)]
    assert [p.ref.kind for p in ledger.lock_order(postings)] == [*sorted(kinds), "house"]


def test_deposit_headroom_is_what_the_strictest_limit_leaves() -> None:
    limits = [Limit("deposit", "day", 500), Limit("deposit", "week", 300)]
    assert protection.deposit_headroom([], {}) is None
    assert protection.deposit_headroom(limits, {}) == 300
    assert protection.deposit_headroom(limits, {"day": 450, "week": 100}) == 50
    assert protection.deposit_headroom(limits, {"day": 600, "week": 600}) == 0


@given(st.lists(st.tuples(st.sampled_from(["day", "week", "month"]), st.integers(0, 10_000)), min_size=1, max_size=3),
       st.dictionaries(st.sampled_from(["day", "week", "month"]), st.integers(0, 12_000)), st.integers(1, 15_000))
def test_an_amount_passes_the_deposit_guard_exactly_when_it_fits_the_headroom(
        raw: list[tuple[str, int]], deposited: dict[str, int], amount: int) -> None:
    limits = [Limit("deposit", period, value) for period, value in raw]
    headroom = protection.deposit_headroom(limits, deposited)
    assert headroom is not None
    assert (protection.check_deposit(limits, deposited, amount) is None) == (amount <= headroom)
