"""Player-protection rules on the money path (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gameplane.wallet import protection as pr
from gameplane.wallet.protection import Limit, State

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def state(*limits: Limit, timeout: datetime | None = None, excluded: datetime | None = None,
          currency: str = "EUR") -> State:
    return State(currency, tuple(limits), timeout, excluded)


def test_no_state_blocks_nothing() -> None:
    assert pr.blocked(None, NOW) is None
    assert pr.windowed(None, "deposit", "EUR") == []


def test_self_exclusion_and_timeout_block_until_they_end() -> None:
    r = pr.blocked(state(excluded=NOW + timedelta(days=180)), NOW)
    assert r is not None and r.reason == "self-excluded"
    r = pr.blocked(state(timeout=NOW + timedelta(hours=1)), NOW)
    assert r is not None and r.reason == "timed-out"
    assert pr.blocked(state(timeout=NOW - timedelta(seconds=1), excluded=NOW - timedelta(days=1)), NOW) is None
    # self-exclusion is reported first: it is the stronger statement
    r = pr.blocked(state(timeout=NOW + timedelta(hours=1), excluded=NOW + timedelta(days=1)), NOW)
    assert r is not None and r.reason == "self-excluded"


def test_pending_increase_applies_only_after_cooling_off() -> None:
    raw = [{"kind": "deposit", "period": "day", "value": 100, "pending_value": 500,
            "pending_effective_at": (NOW + timedelta(hours=1)).isoformat()}]
    assert pr.effective_limits(raw, NOW) == (Limit("deposit", "day", 100),)
    assert pr.effective_limits(raw, NOW + timedelta(hours=2)) == (Limit("deposit", "day", 500),)


def test_strictest_deposit_window_decides() -> None:
    limits = [Limit("deposit", "day", 1000), Limit("deposit", "week", 1200), Limit("deposit", "month", 5000)]
    assert pr.check_deposit(limits, {"day": 0, "week": 0, "month": 0}, 1000) is None
    r = pr.check_deposit(limits, {"day": 100, "week": 900, "month": 900}, 400)
    assert r is not None and r.reason == "deposit-limit" and r.limit == Limit("deposit", "week", 1200)
    assert pr.check_deposit(limits, {"day": 100, "week": 900, "month": 900}, 300) is None  # exactly at the limit


def test_loss_limit_counts_net_loss() -> None:
    limits = [Limit("loss", "day", 500)]
    assert pr.check_loss(limits, {"day": 400}, 100) is None
    r = pr.check_loss(limits, {"day": 400}, 101)
    assert r is not None and r.reason == "loss-limit"
    assert pr.check_loss(limits, {"day": -1000}, 1400) is None  # a player ahead may stake their winnings


def test_only_enforceable_limits_of_the_same_currency_apply() -> None:
    st = state(Limit("deposit", "day", 10), Limit("loss", "week", 10), Limit("session", "session", 60))
    assert pr.windowed(st, "deposit", "EUR") == [Limit("deposit", "day", 10)]
    assert pr.windowed(st, "loss", "EUR") == [Limit("loss", "week", 10)]
    assert pr.windowed(st, "session", "EUR") == []
    assert pr.windowed(st, "deposit", "USD") == []
