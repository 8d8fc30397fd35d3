"""Limit rules: protecting more applies at once, protecting less waits the cooling-off period."""

from datetime import UTC, datetime, timedelta

import pytest

from gameplane.players.errors import InvalidProtectionSetting
from gameplane.players.limits import Limit, is_due, request_change, settle

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
COOL = timedelta(hours=24)


def change(current, value, now=T0, kind="deposit", period="day"):
    return request_change(current, kind, period, value, now, COOL)


def test_first_limit_applies_at_once():
    assert change(None, 5000) == Limit("deposit", "day", 5000)


def test_decrease_applies_at_once_and_cancels_a_pending_increase():
    pending = change(Limit("deposit", "day", 5000), 9000)
    assert pending.value == 5000 and pending.pending_value == 9000
    lowered = change(pending, 2000, T0 + timedelta(hours=1))
    assert lowered == Limit("deposit", "day", 2000)
    assert not lowered.has_pending


def test_increase_waits_the_cooling_off_period():
    current = Limit("deposit", "week", 10_000)
    later = change(current, 50_000, period="week")
    assert later.value == 10_000
    assert later.pending_value == 50_000
    assert later.pending_effective_at == T0 + COOL
    # one second before the end of the cooling-off the old value still applies
    assert settle(later, T0 + COOL - timedelta(seconds=1)).value == 10_000
    assert not is_due(later, T0 + COOL - timedelta(seconds=1))
    assert is_due(later, T0 + COOL)
    assert settle(later, T0 + COOL) == Limit("deposit", "week", 50_000)


def test_asking_again_for_the_same_increase_does_not_restart_the_clock():
    first = change(Limit("loss", "month", 100), 500, kind="loss", period="month")
    again = change(first, 500, T0 + timedelta(hours=20), kind="loss", period="month")
    assert again.pending_effective_at == T0 + COOL


def test_a_different_increase_restarts_the_clock():
    first = change(Limit("deposit", "day", 100), 500)
    other = change(first, 700, T0 + timedelta(hours=20))
    assert other.pending_value == 700
    assert other.pending_effective_at == T0 + timedelta(hours=20) + COOL


def test_removal_is_delayed_like_an_increase():
    current = Limit("deposit", "month", 100_000)
    removing = change(current, None, period="month")
    assert removing.value == 100_000 and removing.pending_removal and removing.pending_value is None
    assert removing.pending_effective_at == T0 + COOL
    assert change(removing, None, T0 + timedelta(hours=5), period="month") == removing
    assert settle(removing, T0 + COOL) is None


def test_removing_a_limit_that_does_not_exist_is_nothing():
    assert change(None, None) is None


def test_a_due_change_is_settled_before_the_next_request():
    pending = change(Limit("deposit", "day", 100), 500)
    after = change(pending, 800, T0 + COOL + timedelta(minutes=1))
    # 500 is in force by then, so 800 is a new increase measured from 500
    assert after.value == 500 and after.pending_value == 800


def test_session_limit_in_minutes():
    assert change(None, 90, kind="session", period="session") == Limit("session", "session", 90)
    with pytest.raises(InvalidProtectionSetting):
        change(None, 24 * 60 + 1, kind="session", period="session")


@pytest.mark.parametrize(("kind", "period", "value"), [
    ("deposit", "session", 100), ("session", "day", 10), ("bets", "day", 10),
    ("deposit", "day", 0), ("deposit", "day", -5),
])
def test_invalid_limits_are_refused(kind, period, value):
    with pytest.raises(InvalidProtectionSetting) as err:
        change(None, value, kind=kind, period=period)
    assert err.value.status == 422 and err.value.slug == "invalid-limit"
