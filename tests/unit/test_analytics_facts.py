"""What each kind of fact adds to its rollup rows (gameplane.analytics.facts.contributions), by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from gameplane.analytics.facts import KINDS, MoneyFact, contributions


def fact(kind: str, amount: int, cash: int, bonus: int, **kw: object) -> MoneyFact:
    return MoneyFact(event_id=uuid.uuid4(), occurred_at=datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC), kind=kind,
                     transaction_id=uuid.uuid4(), player_id=uuid.uuid4(), currency="EUR", amount=amount, cash=cash,
                     bonus=bonus, **kw)  # type: ignore[arg-type]


def test_a_fact_is_dated_by_the_utc_day_of_its_transaction() -> None:
    assert fact("bet", 1, 1, 0).day == date(2026, 3, 1)


def test_play_facts() -> None:
    assert contributions(fact("bet", 1_000, 700, 300)) == {"stakes": 1_000, "bonus_stakes": 300, "bets": 1}
    assert contributions(fact("rollback", 1_000, 700, 300)) == {"stakes": -1_000, "bonus_stakes": -300}
    assert contributions(fact("win", 900, 600, 300)) == {"wins": 900, "bonus_wins": 300}


def test_payment_facts() -> None:
    assert contributions(fact("deposit", 5_000, 5_000, 0, first_deposit=True)) == {"deposits": 5_000, "ftd": 1}
    assert contributions(fact("deposit", 5_000, 4_000, 0)) == {"deposits": 5_000, "ftd": 0}
    assert contributions(fact("withdrawal_posted", 700, 0, 0)) == {"withdrawals": 700}
    assert contributions(fact("withdrawal_held", 700, -700, 0)) == {}
    assert contributions(fact("withdrawal_voided", 700, 700, 0)) == {}
    assert contributions(fact("fee", 35, 0, 0)) == {"payment_fees": 35}
    assert contributions(fact("chargeback", 2_000, -1_500, 0)) == {"chargebacks": 2_000}


def test_bonus_facts() -> None:
    assert contributions(fact("bonus_granted", 1_000, 0, 1_000)) == {"bonus_granted": 1_000}
    # a grant of 600 converted with a cap of 400: 400 to cash, 200 back to the liability
    assert contributions(fact("bonus_converted", 400, 400, -600)) == {"bonus_converted": 400, "bonus_forfeited": 200}
    assert contributions(fact("bonus_forfeited", 250, 0, -250)) == {"bonus_forfeited": 250}
    assert contributions(fact("free_spin_win", 80, 0, 80)) == {"free_spin_wins": 80}


def test_every_kind_is_known_and_an_unknown_one_is_refused() -> None:
    for kind in KINDS:
        contributions(fact(kind, 1, 1, 0))
    with pytest.raises(ValueError):
        contributions(fact("jackpot", 1, 1, 0))
