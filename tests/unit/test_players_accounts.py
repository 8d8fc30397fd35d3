"""Pure account rules: age, KYC transitions, password strength, refresh-token verdicts, lockout."""

from datetime import UTC, date, datetime, timedelta

import pytest

from gameplane.players.age import age_on, check_adult
from gameplane.players.errors import InvalidDateOfBirth, InvalidKycTransition, Underage, WeakPassword
from gameplane.players.kyc import STATES, TRANSITIONS, can_transition, transition
from gameplane.players.lockout import Failures, locked, record_failure
from gameplane.players.passwords import Passwords, check_strength, strength_problems
from gameplane.players.tokens import hash_refresh_token, judge_refresh, new_refresh_token

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_age_counts_completed_years():
    assert age_on(date(2008, 5, 1), date(2026, 5, 1)) == 18
    assert age_on(date(2008, 5, 2), date(2026, 5, 1)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_under_18_refused_on_the_day_before_the_birthday():
    with pytest.raises(Underage) as err:
        check_adult(date(2008, 5, 2), date(2026, 5, 1), 18)
    assert err.value.status == 422 and err.value.slug == "underage"
    assert check_adult(date(2008, 5, 1), date(2026, 5, 1), 18) == 18


def test_implausible_dates_of_birth():
    with pytest.raises(InvalidDateOfBirth):
        check_adult(date(2027, 1, 1), date(2026, 5, 1), 18)
    with pytest.raises(InvalidDateOfBirth):
        check_adult(date(1890, 1, 1), date(2026, 5, 1), 18)


def test_kyc_allowed_transitions():
    assert transition("unverified", "pending") == "pending"
    assert transition("pending", "verified") == "verified"
    assert transition("pending", "rejected") == "rejected"
    assert transition("rejected", "pending") == "pending"


@pytest.mark.parametrize(("current", "wanted"), [
    (c, w) for c in STATES for w in STATES if w not in TRANSITIONS[c]])
def test_kyc_every_other_transition_is_refused(current, wanted):
    assert not can_transition(current, wanted)
    with pytest.raises(InvalidKycTransition) as err:
        transition(current, wanted)
    assert err.value.status == 409 and err.value.slug == "invalid-kyc-transition"


@pytest.mark.parametrize("password", ["short1!", "aaaaaaaaaaaaaa", "Password123", "1234567890"])
def test_weak_passwords(password):
    with pytest.raises(WeakPassword):
        check_strength(password)


def test_password_must_not_contain_the_email():
    assert "must not contain the email address" in strength_problems("xx-alice.smith-42", "alice.smith@example.com")
    check_strength("correct horse battery staple", "alice@example.com")


def test_argon2id_hash_and_verify():
    pw = Passwords(time_cost=1, memory_kib=8192, parallelism=1)
    h = pw.hash("correct horse battery staple")
    assert h.startswith("$argon2id$")
    assert pw.verify(h, "correct horse battery staple")
    assert not pw.verify(h, "correct horse battery stapler")
    assert not pw.verify(None, "decoy password for unknown accounts")
    assert not pw.verify("not-a-hash", "x")


def test_refresh_tokens_are_random_and_stored_hashed():
    a, b = new_refresh_token(), new_refresh_token()
    assert a != b and len(a) >= 40
    assert hash_refresh_token(a) != a and len(hash_refresh_token(a)) == 64


def test_refresh_verdicts():
    exp = T0 + timedelta(days=30)
    assert judge_refresh(rotated_at=None, revoked_at=None, expires_at=exp, now=T0) == "rotate"
    assert judge_refresh(rotated_at=T0, revoked_at=None, expires_at=exp, now=T0) == "reused"
    assert judge_refresh(rotated_at=T0, revoked_at=None, expires_at=T0, now=exp) == "reused"
    assert judge_refresh(rotated_at=T0, revoked_at=T0, expires_at=exp, now=T0) == "revoked"
    assert judge_refresh(rotated_at=None, revoked_at=None, expires_at=exp, now=exp) == "expired"


def test_lockout_after_n_failures_within_the_window():
    state = Failures()
    kw = {"max_failures": 3, "window": timedelta(minutes=15), "lock_for": timedelta(minutes=10)}
    for i in range(2):
        state = record_failure(state, T0 + timedelta(minutes=i), **kw)
        assert not locked(state, T0 + timedelta(minutes=i))
    state = record_failure(state, T0 + timedelta(minutes=2), **kw)
    assert locked(state, T0 + timedelta(minutes=3))
    assert not locked(state, T0 + timedelta(minutes=12))


def test_failures_outside_the_window_do_not_add_up():
    kw = {"max_failures": 3, "window": timedelta(minutes=15), "lock_for": timedelta(minutes=10)}
    state = Failures()
    for hours in (0, 1, 2, 3):
        state = record_failure(state, T0 + timedelta(hours=hours), **kw)
        assert not locked(state, T0 + timedelta(hours=hours))
