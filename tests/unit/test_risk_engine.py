"""The risk engine on crafted feature snapshots: each rule type fires on the sequence it is about
and stays quiet on a benign one next to it; the verdict combines fired rules into a score and an
outcome; bad rule set documents are refused. Every threshold is written in the test's own rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from gameplane.risk import engine
from gameplane.risk.features import Snapshot, Totals, bucket_start, buckets_of, is_chase, window_cutoffs
from gameplane.risk.rules import RuleSet

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
PLAYER = uuid.uuid4()


def one_rule(rule: dict[str, Any], review_at: int = 1000, deny_at: int = 1000) -> RuleSet:
    return RuleSet.model_validate({"review_at": review_at, "deny_at": deny_at,
                                   "rules": [{"score": 100, "action": "review", **rule}]})


def snap(**kw: Any) -> Snapshot:
    return Snapshot(player_id=PLAYER, now=NOW, **kw)


def deposit(amount: int = 5_000, currency: str = "EUR", method: str | None = "card-1") -> engine.Request:
    return engine.Request("deposit", amount, currency, method)


def withdrawal(amount: int = 5_000, currency: str = "EUR", method: str | None = "card-1") -> engine.Request:
    return engine.Request("withdrawal", amount, currency, method)


def fired(rule_set: RuleSet, s: Snapshot, req: engine.Request) -> list[str]:
    return engine.decide(rule_set, s, req).rule_ids


# ---- velocity ----------------------------------------------------------------------------------

def test_velocity_count_counts_the_request_being_decided() -> None:
    rules = one_rule({"id": "burst", "type": "velocity", "feature": "deposit_requests", "window": "5m",
                      "count_gte": 4})
    # three deposit attempts in the last five minutes, this is the fourth
    assert fired(rules, snap(windows={("deposit_requests", "5m"): Totals(3, 300)}), deposit()) == ["burst"]
    # two before it: three in all, quiet
    assert fired(rules, snap(windows={("deposit_requests", "5m"): Totals(2, 200)}), deposit()) == []
    # the same three were a withdrawal's neighbours: a deposit count does not move for a withdrawal
    assert fired(rules, snap(windows={("deposit_requests", "5m"): Totals(3, 300)}), withdrawal()) == []


def test_velocity_sum_over_a_day() -> None:
    rules = one_rule({"id": "day-sum", "type": "velocity", "feature": "deposit_requests", "window": "1d",
                      "sum_gte": 100_000})
    before = snap(windows={("deposit_requests", "1d"): Totals(3, 90_000)})
    assert fired(rules, before, deposit(10_000)) == ["day-sum"]  # 90,000 + 10,000 reaches 100,000
    assert fired(rules, before, deposit(9_999)) == []


def test_velocity_on_event_features_does_not_add_the_request() -> None:
    rules = one_rule({"id": "failed", "type": "velocity", "feature": "failed_deposits", "window": "1h",
                      "count_gte": 3})
    assert fired(rules, snap(windows={("failed_deposits", "1h"): Totals(3, 0)}), deposit()) == ["failed"]
    assert fired(rules, snap(windows={("failed_deposits", "1h"): Totals(2, 0)}), deposit()) == []
    # failures of the day that are not within the hour do not count for the hour
    assert fired(rules, snap(windows={("failed_deposits", "1d"): Totals(9, 0)}), deposit()) == []


# ---- large amounts -------------------------------------------------------------------------------

def test_large_amount_per_currency() -> None:
    rules = one_rule({"id": "large", "type": "large_amount", "amount_gte": {"EUR": 500_000}})
    assert fired(rules, snap(), deposit(500_000)) == ["large"]
    assert fired(rules, snap(), deposit(499_999)) == []
    assert fired(rules, snap(), deposit(900_000, currency="JPY")) == []  # no threshold for JPY: quiet


# ---- shared addresses and devices ----------------------------------------------------------------

def test_shared_device_counts_accounts_within_the_window() -> None:
    rules = one_rule({"id": "device", "type": "shared_identity", "key": "device", "min_accounts": 3,
                      "window": "7d"})
    assert fired(rules, snap(links={("device", "7d"): 3}), deposit()) == ["device"]
    assert fired(rules, snap(links={("device", "7d"): 2}), deposit()) == []
    # three accounts on the address is not the device rule
    assert fired(rules, snap(links={("ip", "7d"): 3}), deposit()) == []


# ---- withdrawal to a new method ------------------------------------------------------------------

def test_withdrawal_to_a_method_never_deposited_with() -> None:
    rules = one_rule({"id": "new-method", "type": "new_method"})
    history = snap(methods={"card-1": NOW - timedelta(days=40)})
    assert fired(rules, history, withdrawal(method="ewallet-9")) == ["new-method"]
    assert fired(rules, history, withdrawal(method="card-1")) == []
    assert fired(rules, history, withdrawal(method=None)) == []
    assert fired(rules, history, deposit(method="ewallet-9")) == []  # a deposit with a new method is normal


def test_many_deposit_methods() -> None:
    rules = one_rule({"id": "methods", "type": "many_methods", "min_methods": 3, "window": "7d"})
    two = snap(methods={"a": NOW - timedelta(days=1), "b": NOW - timedelta(days=2)})
    assert fired(rules, two, deposit(method="c")) == ["methods"]
    assert fired(rules, two, deposit(method="a")) == []
    old = snap(methods={"a": NOW - timedelta(days=1), "b": NOW - timedelta(days=20)})
    assert fired(rules, old, deposit(method="c")) == []  # b was last used before the window


# ---- deposit then withdraw with little play -------------------------------------------------------

def test_little_play_compares_wagers_with_deposits() -> None:
    rules = one_rule({"id": "little-play", "type": "little_play", "window": "7d", "max_wagered_pct": 100,
                      "min_deposited": 1_000})
    barely = snap(windows={("deposits", "7d"): Totals(1, 50_000), ("bets", "7d"): Totals(10, 5_000)})
    assert fired(rules, barely, withdrawal(40_000)) == ["little-play"]
    played = snap(windows={("deposits", "7d"): Totals(1, 50_000), ("bets", "7d"): Totals(400, 60_000)})
    assert fired(rules, played, withdrawal(40_000)) == []
    assert fired(rules, snap(), withdrawal(40_000)) == []  # nothing deposited: nothing to launder


# ---- markers of harm -----------------------------------------------------------------------------

def test_rising_deposit_frequency() -> None:
    rules = one_rule({"id": "rising", "type": "rising_deposits", "measure": "count", "factor_pct": 200,
                      "min_recent": 4, "harm": True})
    # 3 deposits in the three weeks before (one a week), 6 this week: six times the weekly average
    rising = snap(windows={("deposits", "7d"): Totals(6, 6_000), ("deposits", "28d"): Totals(9, 9_000)})
    assert fired(rules, rising, deposit()) == ["rising"]
    # 6 a week before (18 in three weeks) and 6 this week: steady
    steady = snap(windows={("deposits", "7d"): Totals(6, 6_000), ("deposits", "28d"): Totals(24, 24_000)})
    assert fired(rules, steady, deposit()) == []
    new_player = snap(windows={("deposits", "7d"): Totals(6, 6_000), ("deposits", "28d"): Totals(6, 6_000)})
    assert fired(rules, new_player, deposit()) == []  # no history to rise from


def test_chasing_losses_counts_a_deposit_soon_after_losing_the_last_one() -> None:
    rules = one_rule({"id": "chasing", "type": "chasing_losses", "loss_pct": 80, "within_minutes": 30,
                      "min_count": 2, "window": "1d"})
    # one chase earlier today; the player lost 9,000 of the last 10,000 deposit, betting until 5 minutes ago
    chasing = snap(windows={("chase_deposits", "1d"): Totals(1, 10_000)}, last_deposit_amount=10_000,
                   last_deposit_at=NOW - timedelta(hours=1), wagered_since_deposit=30_000,
                   won_since_deposit=21_000, last_bet_at=NOW - timedelta(minutes=5))
    assert fired(rules, chasing, deposit()) == ["chasing"]
    # the same player but winning since the last deposit: not a chase
    winning = snap(windows={("chase_deposits", "1d"): Totals(1, 10_000)}, last_deposit_amount=10_000,
                   last_deposit_at=NOW - timedelta(hours=1), wagered_since_deposit=30_000,
                   won_since_deposit=35_000, last_bet_at=NOW - timedelta(minutes=5))
    assert fired(rules, winning, deposit()) == []
    # lost it all, but stopped playing two hours ago: a considered deposit, not a chase
    rested = snap(windows={("chase_deposits", "1d"): Totals(1, 10_000)}, last_deposit_amount=10_000,
                  last_deposit_at=NOW - timedelta(hours=5), wagered_since_deposit=10_000, won_since_deposit=0,
                  last_bet_at=NOW - timedelta(hours=2))
    assert fired(rules, rested, deposit()) == []


def test_is_chase_thresholds() -> None:
    s = snap(last_deposit_amount=10_000, wagered_since_deposit=8_000, won_since_deposit=0,
             last_bet_at=NOW - timedelta(minutes=10))
    assert is_chase(s, NOW, 80, timedelta(minutes=30))
    assert not is_chase(s, NOW, 81, timedelta(minutes=30))
    assert not is_chase(s, NOW, 80, timedelta(minutes=9))
    assert not is_chase(snap(), NOW, 80, timedelta(minutes=30))  # never deposited


# ---- combining -------------------------------------------------------------------------------------

def test_verdict_combines_scores_and_actions() -> None:
    rules = RuleSet.model_validate({"review_at": 300, "deny_at": 700, "rules": [
        {"id": "a", "type": "large_amount", "amount_gte": {"EUR": 1_000}, "score": 200, "action": "score"},
        {"id": "b", "type": "large_amount", "amount_gte": {"EUR": 2_000}, "score": 200, "action": "score"},
        {"id": "c", "type": "large_amount", "amount_gte": {"EUR": 3_000}, "score": 400, "action": "score"},
        {"id": "d", "type": "large_amount", "amount_gte": {"EUR": 4_000}, "score": 900, "action": "score"},
        {"id": "w", "type": "large_amount", "amount_gte": {"EUR": 10}, "score": 0, "action": "review",
         "applies_to": ["withdrawal"]},
        {"id": "x", "type": "new_method", "score": 0, "action": "deny"},
    ]})
    assert engine.decide(rules, snap(), deposit(500)) == engine.Verdict("allow", 0, ())
    v = engine.decide(rules, snap(), deposit(1_500))
    assert (v.outcome, v.score, v.rule_ids) == ("allow", 200, ["a"])
    v = engine.decide(rules, snap(), deposit(2_500))
    assert (v.outcome, v.score, v.rule_ids) == ("review", 400, ["a", "b"])
    v = engine.decide(rules, snap(), deposit(3_500))
    assert (v.outcome, v.score) == ("deny", 800)
    v = engine.decide(rules, snap(), deposit(4_500))
    assert (v.outcome, v.score) == ("deny", 1000)  # 1,700 capped at 1,000
    # a review action with no score still reviews; a deny action denies at score 0
    v = engine.decide(rules, snap(methods={"card-1": NOW}), withdrawal(20, method="card-1"))
    assert (v.outcome, v.score, v.rule_ids) == ("review", 0, ["w"])
    v = engine.decide(rules, snap(methods={"card-1": NOW}), withdrawal(20, method="card-2"))
    assert (v.outcome, v.rule_ids) == ("deny", ["w", "x"])


def test_harm_scores_only_markers_of_harm_without_a_request() -> None:
    rules = RuleSet.model_validate({"review_at": 300, "deny_at": 900, "rules": [
        {"id": "failed", "type": "velocity", "feature": "failed_deposits", "window": "1h", "count_gte": 2,
         "score": 150, "action": "score", "harm": True},
        {"id": "reversed", "type": "velocity", "feature": "cancelled_withdrawals", "window": "7d", "count_gte": 2,
         "score": 250, "action": "score", "harm": True},
        {"id": "logins", "type": "velocity", "feature": "logins", "window": "1h", "count_gte": 1, "score": 500,
         "action": "review"},
        {"id": "large", "type": "large_amount", "amount_gte": {"EUR": 1}, "score": 500, "harm": True},
    ]})
    s = snap(windows={("failed_deposits", "1h"): Totals(2, 0), ("cancelled_withdrawals", "7d"): Totals(3, 9),
                      ("logins", "1h"): Totals(5, 0)})
    v = engine.harm(rules, s)
    assert (v.score, v.rule_ids) == (400, ["failed", "reversed"])  # logins is no marker; large needs a request
    assert engine.harm(rules, snap(windows={("logins", "1h"): Totals(5, 0)})).score == 0


# ---- the documents -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"review_at": 300, "deny_at": 200, "rules": []},
    {"review_at": 300, "deny_at": 800, "rules": [{"id": "x", "type": "telepathy", "score": 1}]},
    {"review_at": 300, "deny_at": 800, "rules": [{"id": "x", "type": "velocity", "feature": "bets", "window": "1h",
                                                  "score": 1}]},
    {"review_at": 300, "deny_at": 800, "rules": [{"id": "x", "type": "velocity", "feature": "bets", "window": "1h",
                                                  "count_gte": 1, "sum_gte": 1, "score": 1}]},
    {"review_at": 300, "deny_at": 800, "rules": [{"id": "x", "type": "velocity", "feature": "bets", "window": "2h",
                                                  "count_gte": 1, "score": 1}]},
    {"review_at": 300, "deny_at": 800, "rules": [{"id": "x", "type": "large_amount", "amount_gte": {"EUR": 1},
                                                  "score": 1001}]},
    {"review_at": 300, "deny_at": 800, "rules": [
        {"id": "x", "type": "large_amount", "amount_gte": {"EUR": 1}, "score": 1},
        {"id": "x", "type": "new_method", "score": 1}]},
    {"review_at": 300, "deny_at": 800, "rules": [{"id": "Bad Id", "type": "new_method", "score": 1}]},
    {"review_at": 300, "deny_at": 800, "rules": [{"id": "x", "type": "new_method", "score": 1, "extra": 1}]},
])
def test_bad_documents_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RuleSet.model_validate(bad)


def test_the_shipped_default_rule_set_is_valid_and_quiet_for_an_ordinary_deposit() -> None:
    import json
    from importlib import resources

    rules = RuleSet.model_validate(json.loads((resources.files("gameplane.risk") / "default_rules.json").read_text()))
    assert len(rules.rules) >= 10
    # a first deposit of EUR 20 by a player nobody else shares anything with
    assert engine.decide(rules, snap(), deposit(2_000)).outcome == "allow"


# ---- buckets -----------------------------------------------------------------------------------------

def test_buckets_and_window_cutoffs() -> None:
    at = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
    (short, s_start), (day, d_start) = buckets_of(at)
    assert (short, s_start) == (300, datetime(2026, 3, 14, 15, 5, tzinfo=UTC))
    assert (day, d_start) == (86_400, datetime(2026, 3, 14, tzinfo=UTC))
    cut = window_cutoffs(at)
    # a window counts every bucket that ends inside it: the 5-minute window reaches back to 15:00
    assert bucket_start(at - timedelta(minutes=5), 300) > cut["5m"]
    assert datetime(2026, 3, 14, 14, 59, 59, tzinfo=UTC) < cut["5m"] + timedelta(minutes=5)
    assert cut["7d"] == at - timedelta(days=8)
