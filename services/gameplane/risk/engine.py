"""The rules engine: pure functions from a rule set and a feature snapshot to a verdict. No I/O,
no clock (the snapshot carries `now`), so every rule can be tested on a crafted snapshot.

`decide` judges a deposit or withdrawal request; `harm` scores a player's markers of harm with
no request at hand (after bets, wins and deposits arrive as events).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gameplane.contracts.risk import MAX_SCORE, DecisionKind, Outcome
from gameplane.risk import rules as r
from gameplane.risk.features import Snapshot, Totals, is_chase


@dataclass(frozen=True, slots=True)
class Request:
    kind: DecisionKind
    amount: int
    currency: str
    method_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class Fired:
    rule_id: str
    score: int
    action: r.Action
    harm: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    score: int
    fired: tuple[Fired, ...]

    @property
    def rule_ids(self) -> list[str]:
        return [f.rule_id for f in self.fired]


# Each check answers whether its rule fires; `req` is None when scoring harm without a request.
Check = Callable[[Any, Snapshot, Request | None], bool]


def _velocity(rule: r.Velocity, snap: Snapshot, req: Request | None) -> bool:
    totals = snap.totals(rule.feature, rule.window)
    if req is not None and rule.feature == f"{req.kind}_requests":
        totals = totals.plus(req.amount)  # the request being decided is one of them
    if rule.count_gte is not None:
        return totals.count >= rule.count_gte
    assert rule.sum_gte is not None
    return totals.total >= rule.sum_gte


def _large_amount(rule: r.LargeAmount, snap: Snapshot, req: Request | None) -> bool:
    if req is None:
        return False
    threshold = rule.amount_gte.get(req.currency)
    return threshold is not None and req.amount >= threshold


def _shared_identity(rule: r.SharedIdentity, snap: Snapshot, req: Request | None) -> bool:
    return snap.accounts(rule.key, rule.window) >= rule.min_accounts


def _new_method(rule: r.NewMethod, snap: Snapshot, req: Request | None) -> bool:
    return (req is not None and req.kind == "withdrawal" and req.method_fingerprint is not None
            and req.method_fingerprint not in snap.methods)


def _many_methods(rule: r.ManyMethods, snap: Snapshot, req: Request | None) -> bool:
    since = snap.now - timedelta(seconds=r.WINDOW_SECONDS[rule.window])
    used = {m for m, last in snap.methods.items() if last >= since}
    if req is not None and req.kind == "deposit" and req.method_fingerprint:
        used.add(req.method_fingerprint)
    return len(used) >= rule.min_methods


def _little_play(rule: r.LittlePlay, snap: Snapshot, req: Request | None) -> bool:
    if req is None or req.kind != "withdrawal":
        return False
    deposited = snap.totals("deposits", rule.window).total
    wagered = snap.totals("bets", rule.window).total
    return deposited >= rule.min_deposited and wagered * 100 < rule.max_wagered_pct * deposited


def _rising_deposits(rule: r.RisingDeposits, snap: Snapshot, req: Request | None) -> bool:
    recent = snap.totals("deposits", "7d")
    whole = snap.totals("deposits", "28d")
    before = Totals(whole.count - recent.count, whole.total - recent.total)
    if recent.count < rule.min_recent or before.count < 1:
        return False
    now_m, before_m = (recent.count, before.count) if rule.measure == "count" else (recent.total, before.total)
    # the 3 weeks before give a weekly average of before_m / 3
    return now_m * 300 >= rule.factor_pct * before_m


def _chasing_losses(rule: r.ChasingLosses, snap: Snapshot, req: Request | None) -> bool:
    chases = snap.totals("chase_deposits", rule.window).count
    if req is not None and req.kind == "deposit" and is_chase(
            snap, snap.now, rule.loss_pct, timedelta(minutes=rule.within_minutes)):
        chases += 1
    return chases >= rule.min_count


CHECKS: dict[type[Any], Check] = {
    r.Velocity: _velocity, r.LargeAmount: _large_amount, r.SharedIdentity: _shared_identity,
    r.NewMethod: _new_method, r.ManyMethods: _many_methods, r.LittlePlay: _little_play,
    r.RisingDeposits: _rising_deposits, r.ChasingLosses: _chasing_losses,
}


def _combine(rule_set: r.RuleSet, fired: list[Fired]) -> Verdict:
    score = min(MAX_SCORE, sum(f.score for f in fired))
    actions = {f.action for f in fired}
    outcome: Outcome
    if "deny" in actions or score >= rule_set.deny_at:
        outcome = "deny"
    elif "review" in actions or score >= rule_set.review_at:
        outcome = "review"
    else:
        outcome = "allow"
    return Verdict(outcome, score, tuple(fired))


def decide(rule_set: r.RuleSet, snap: Snapshot, req: Request) -> Verdict:
    """The verdict on a deposit or withdrawal: the rules that apply to its kind, in order."""
    fired = [Fired(rule.id, rule.score, rule.action, rule.harm) for rule in rule_set.rules
             if req.kind in rule.applies_to and CHECKS[type(rule)](rule, snap, req)]
    return _combine(rule_set, fired)


def harm(rule_set: r.RuleSet, snap: Snapshot) -> Verdict:
    """The player's harm score: the markers of harm (rules with `harm: true`) that hold now, with
    no request at hand. Its outcome says how a decision would treat them alone."""
    fired = [Fired(rule.id, rule.score, rule.action, True) for rule in rule_set.rules
             if rule.harm and CHECKS[type(rule)](rule, snap, None)]
    return _combine(rule_set, fired)
