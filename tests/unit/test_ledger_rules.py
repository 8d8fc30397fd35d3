"""Pure ledger rules: splits, postings per operation, lock order and the in-memory invariant checks."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplane.wallet import ledger
from gameplane.wallet.ledger import InsufficientFunds, Posting, Ref, Split

P = uuid.UUID("00000000-0000-0000-0000-000000000001")
amounts = st.integers(min_value=0, max_value=10**12)


def sums(postings: list[Posting]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for p in postings:
        out[p.ref.currency] += p.amount
    return dict(out)


def test_stake_takes_cash_first_then_bonus() -> None:
    assert ledger.split_stake(700, cash=500, bonus=400) == Split(500, 200)
    assert ledger.split_stake(300, cash=500, bonus=400) == Split(300, 0)
    assert ledger.split_stake(400, cash=0, bonus=400) == Split(0, 400)


def test_stake_beyond_cash_and_bonus_is_refused() -> None:
    with pytest.raises(InsufficientFunds) as exc:
        ledger.split_stake(901, cash=500, bonus=400)
    assert (exc.value.needed, exc.value.available) == (901, 900)


def test_negative_amounts_are_rejected() -> None:
    with pytest.raises(ValueError):
        ledger.split_stake(-1, 5, 5)
    with pytest.raises(ValueError):
        ledger.split_win(-1, Split(1, 1))


@given(amount=amounts, cash=amounts, bonus=amounts)
def test_stake_split_is_exact_and_cash_first(amount: int, cash: int, bonus: int) -> None:
    if amount > cash + bonus:
        with pytest.raises(InsufficientFunds):
            ledger.split_stake(amount, cash, bonus)
        return
    sp = ledger.split_stake(amount, cash, bonus)
    assert sp.total == amount and 0 <= sp.cash <= cash and 0 <= sp.bonus <= bonus
    assert sp.bonus == 0 or sp.cash == cash  # bonus is touched only once cash is gone


def test_win_follows_the_stake_proportion_with_remainder_to_cash() -> None:
    assert ledger.split_win(1001, Split(1000, 200)) == Split(835, 166)
    assert ledger.split_win(100, Split(0, 50)) == Split(0, 100)
    assert ledger.split_win(100, Split(50, 0)) == Split(100, 0)
    assert ledger.split_win(7, Split(0, 0)) == Split(7, 0)  # zero stake (free round): all cash


@given(win=amounts, stake_cash=amounts, stake_bonus=amounts)
def test_win_split_is_exact_and_proportional(win: int, stake_cash: int, stake_bonus: int) -> None:
    sp = ledger.split_win(win, Split(stake_cash, stake_bonus))
    assert sp.total == win and sp.cash >= 0 and sp.bonus >= 0
    total = stake_cash + stake_bonus
    if total:
        # bonus share is the exact proportion rounded down: less than one minor unit off
        assert sp.bonus * total <= win * stake_bonus < (sp.bonus + 1) * total


@given(amount=st.integers(min_value=1, max_value=10**12), cash=amounts, bonus=amounts,
       shard=st.integers(min_value=0, max_value=63))
def test_every_operation_balances(amount: int, cash: int, bonus: int, shard: int) -> None:
    split = Split(cash, bonus)
    for postings in (
        ledger.bet(P, "EUR", split, shard), ledger.win(P, "EUR", split, shard),
        ledger.deposit(P, "EUR", amount), ledger.withdrawal_hold(P, "EUR", amount),
        ledger.withdrawal_post(P, "EUR", amount), ledger.withdrawal_void(P, "EUR", amount),
        ledger.bonus_grant(P, "EUR", amount), ledger.bonus_convert(P, "EUR", amount),
        ledger.bonus_forfeit(P, "EUR", amount), ledger.adjustment(P, "EUR", amount),
        ledger.adjustment(P, "EUR", -amount),
    ):
        assert all(v == 0 for v in sums(postings).values())
        assert all(p.amount != 0 for p in postings)


def test_bet_moves_player_money_to_the_chosen_house_shard() -> None:
    postings = ledger.bet(P, "EUR", Split(300, 200), shard=5)
    got = {(p.ref.kind, p.ref.shard): p.amount for p in postings}
    assert got == {("cash", 0): -300, ("bonus", 0): -200, ("house", 5): 500}
    assert [p.ref for p in postings if p.ref.kind == "house"] == [Ref("platform", "house", "EUR", 5)]


def test_zero_legs_are_dropped() -> None:
    assert ledger.bet(P, "EUR", Split(0, 0), 0) == []
    assert {p.ref.kind for p in ledger.bet(P, "EUR", Split(10, 0), 0)} == {"cash", "house"}


def test_mirror_negates_every_entry_and_rollback_check_accepts_it() -> None:
    bet = ledger.bet(P, "EUR", Split(300, 200), 3)
    back = ledger.mirror(bet)
    assert [p.amount for p in back] == [-p.amount for p in bet]
    assert ledger.check_rollback(bet, back) == []


def test_rollback_check_catches_a_wrong_shard_or_amount() -> None:
    bet = ledger.bet(P, "EUR", Split(300, 200), 3)
    wrong_shard = ledger.mirror(ledger.bet(P, "EUR", Split(300, 200), 4))
    wrong_split = ledger.mirror(ledger.bet(P, "EUR", Split(400, 100), 3))
    assert [b.invariant for b in ledger.check_rollback(bet, wrong_shard)] == [6]
    assert [b.invariant for b in ledger.check_rollback(bet, wrong_split)] == [6]


def test_house_shard_is_stable_and_in_range() -> None:
    keys = [f"rgs:{i}" for i in range(2000)]
    shards = [ledger.house_shard(k, 16) for k in keys]
    assert shards == [ledger.house_shard(k, 16) for k in keys]
    assert set(shards) == set(range(16))  # every shard gets used
    assert ledger.house_shard("x", 1) == 0


def test_lock_order_is_players_by_kind_then_platform() -> None:
    postings = [Posting(ledger.platform("house", "EUR", 2), 1), Posting(ledger.player(P, "withdrawal_hold", "EUR"), 1),
                Posting(ledger.platform("bonus_cost", "EUR"), 1), Posting(ledger.player(P, "cash", "EUR"), 1),
                Posting(ledger.player(P, "bonus", "EUR"), 1)]
    kinds = [p.ref.kind for p in ledger.lock_order(postings)]
    assert kinds == ["bonus", "cash", "withdrawal_hold", "bonus_cost", "house"]


def test_invariant_checks_find_breaches() -> None:
    cash = ledger.player(P, "cash", "EUR")
    world = ledger.platform("world", "EUR")
    assert ledger.check_balanced({"t1": [("EUR", 5), ("EUR", -5)], "t2": [("EUR", 5), ("USD", -5)]}) == [
        ledger.Breach(1, "transaction t2 sums to 5 EUR"), ledger.Breach(1, "transaction t2 sums to -5 USD")]
    assert [b.invariant for b in ledger.check_non_negative({cash: -1, world: -100})] == [2]
    entries = [Posting(cash, 10), Posting(world, -10)]
    assert ledger.check_balances_match({cash: 10, world: -10}, entries) == []
    assert [b.invariant for b in ledger.check_balances_match({cash: 11, world: -10}, entries)] == [3]
    assert ledger.check_conserved({cash: 10, world: -10}) == []
    assert [b.invariant for b in ledger.check_conserved({cash: 11, world: -10})] == [4]


def test_a_stake_draws_on_grants_in_the_order_given_each_emptied_first() -> None:
    assert ledger.draw(250, [("a", 100), ("b", 0), ("c", 200)]) == {"a": 100, "c": 150}
    assert ledger.draw(0, [("a", 100)]) == {}
    with pytest.raises(InsufficientFunds):
        ledger.draw(301, [("a", 100), ("c", 200)])


def test_a_win_is_shared_per_grant_with_the_remainder_to_the_largest_stake() -> None:
    assert ledger.share(750, {"a": 100, "c": 50, "b": 150}) == {"a": 250, "c": 125, "b": 375}
    assert ledger.share(10, {"b": 1, "a": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}  # tie: smallest id
    assert ledger.share(7, {"a": 1, "b": 5}) == {"a": 1, "b": 6}  # 7*1//6 = 1, 7*5//6 = 5, +1 to b
    assert ledger.share(0, {"a": 5}) == {} and ledger.share(5, {}) == {}


@given(amount=st.integers(0, 10**9), stake=st.dictionaries(st.text("abcdef", min_size=1, max_size=3),
                                                           st.integers(1, 10**6), min_size=1, max_size=6))
def test_a_win_share_sums_exactly_and_each_part_is_within_one_unit_per_grant(amount: int,
                                                                            stake: dict[str, int]) -> None:
    parts = ledger.share(amount, stake)
    assert sum(parts.values()) == amount
    total = sum(stake.values())
    for g, s in stake.items():
        exact = amount * s / total
        assert exact - 1 < parts.get(g, 0) < exact + len(stake)


def test_a_payment_fee_is_an_expense_paid_from_psp_clearing_and_touches_no_player_or_house() -> None:
    postings = ledger.payment_fee("EUR", 150)
    assert {(p.ref.owner, p.ref.kind): p.amount for p in postings} == {
        ("platform", "payment_fees"): -150, ("platform", "psp_clearing"): 150}
    assert sums(postings) == {"EUR": 0}
    with pytest.raises(ValueError):
        ledger.payment_fee("EUR", 0)
