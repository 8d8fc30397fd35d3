"""Session rules: who may launch, how long a session lives, when reality checks are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gameplane.sessions import logic
from gameplane.sessions.logic import LaunchRefused, Played, Protection

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BREAK = timedelta(minutes=30)
TTL = timedelta(hours=4)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_self_exclusion_and_time_out_refuse_a_launch() -> None:
    logic.check_launch(None, NOW)
    logic.check_launch(Protection(), NOW)
    logic.check_launch(Protection(self_excluded_until=NOW - minutes(1), timeout_until=NOW), NOW)  # both over
    with pytest.raises(LaunchRefused) as err:
        logic.check_launch(Protection(self_excluded_until=NOW + timedelta(days=180)), NOW)
    assert err.value.slug == "self-excluded"
    with pytest.raises(LaunchRefused) as err:
        logic.check_launch(Protection(timeout_until=NOW + minutes(1)), NOW)
    assert err.value.slug == "timed-out"


def test_play_time_chains_sessions_separated_by_short_pauses() -> None:
    history = [
        Played(NOW - minutes(200), NOW - minutes(150)),   # before a 40-minute break: not counted
        Played(NOW - minutes(110), NOW - minutes(60)),    # 50 min
        Played(NOW - minutes(50), NOW - minutes(20)),     # 30 min, after a 10-minute pause
        Played(NOW - minutes(15), None),                  # still open: 15 min
    ]
    assert logic.current_play(history, NOW, BREAK) == minutes(95)
    assert logic.current_play([], NOW, BREAK) == timedelta(0)
    assert logic.current_play([Played(NOW - minutes(90), NOW - minutes(30))], NOW, BREAK) == timedelta(0)


def test_overlapping_sessions_are_not_counted_twice() -> None:
    history = [Played(NOW - minutes(60), None), Played(NOW - minutes(30), None)]
    assert logic.current_play(history, NOW, BREAK) == minutes(60)


def test_session_expiry_is_capped_by_the_session_limit() -> None:
    expires, capped = logic.session_expiry(NOW, TTL, None, [], BREAK)
    assert (expires, capped) == (NOW + TTL, False)
    limited = Protection(session_limit_minutes=60)
    expires, capped = logic.session_expiry(NOW, TTL, limited, [Played(NOW - minutes(45), NOW - minutes(5))], BREAK)
    assert (expires, capped) == (NOW + minutes(20), True)
    expires, capped = logic.session_expiry(NOW, minutes(10), limited, [], BREAK)
    assert (expires, capped) == (NOW + minutes(10), False)


def test_a_used_up_session_limit_refuses_until_a_break() -> None:
    limited = Protection(session_limit_minutes=60)
    history = [Played(NOW - minutes(70), NOW - minutes(2))]
    with pytest.raises(LaunchRefused) as err:
        logic.session_expiry(NOW, TTL, limited, history, BREAK)
    assert err.value.slug == "session-limit-reached"
    later = NOW + BREAK
    expires, _ = logic.session_expiry(later, TTL, limited, history, BREAK)
    assert expires == later + minutes(60)


def test_session_limit_from_a_snapshot_honours_cooling_off() -> None:
    limits = [{"kind": "deposit", "period": "day", "value": 5000},
              {"kind": "session", "period": "session", "value": 60, "pending_value": 120,
               "pending_effective_at": NOW + timedelta(hours=1)}]
    assert logic.session_limit(limits, NOW) == 60
    assert logic.session_limit(limits, NOW + timedelta(hours=2)) == 120
    assert logic.session_limit(limits[:1], NOW) is None


def test_reality_checks_are_scheduled_from_the_session_start() -> None:
    assert logic.next_reality_check(NOW, None, 0) is None
    assert logic.next_reality_check(NOW, 30, 0) == NOW + minutes(30)
    assert logic.next_reality_check(NOW, 30, 3) == NOW + minutes(120)
