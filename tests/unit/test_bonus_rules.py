"""The bonus service's pure rules: the grant state machine, wagering arithmetic, the jurisdiction
check of offers and eligibility. Expected figures are written out by hand, not computed by the
code under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gameplane.bonus import states, wagering
from gameplane.bonus.rules import PlayerFacts, check_jurisdiction, ineligible
from gameplane.contracts.bonus import OfferTerms
from gameplane.contracts.jurisdiction import profile
from gameplane.kit.problems import Problem

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def terms(**over: object) -> OfferTerms:
    base: dict[str, object] = {"name": "welcome", "kind": "no_deposit", "currency": "EUR", "amount": 1000,
                               "wagering_multiplier": 10}
    return OfferTerms.model_validate({**base, **over})


# ---- state machine ------------------------------------------------------------------------------

@pytest.mark.parametrize(("current", "target"), [
    ("issued", "active"), ("active", "wagering"), ("active", "completed"), ("wagering", "completed"),
    ("completed", "converted"), ("issued", "cancelled"), ("active", "expired"), ("wagering", "forfeited"),
])
def test_allowed_transitions(current: str, target: str) -> None:
    assert states.transition(current, target) == target  # type: ignore[arg-type]


@pytest.mark.parametrize(("current", "target"), [
    ("issued", "wagering"), ("issued", "completed"), ("active", "converted"), ("completed", "forfeited"),
    ("completed", "expired"), ("converted", "cancelled"), ("expired", "active"), ("cancelled", "forfeited"),
    ("forfeited", "converted"), ("wagering", "active"),
])
def test_refused_transitions(current: str, target: str) -> None:
    with pytest.raises(states.InvalidTransition):
        states.transition(current, target)  # type: ignore[arg-type]


def test_closed_states_lead_nowhere_and_every_state_is_in_the_table() -> None:
    assert set(states.TRANSITIONS) == set(states.STATES) == {
        "issued", "active", "wagering", "completed", "converted", "expired", "cancelled", "forfeited"}
    for closed in ("converted", "expired", "cancelled", "forfeited"):
        assert states.TRANSITIONS[closed] == frozenset()  # type: ignore[index]


def test_progress_moves_active_to_wagering_then_completed() -> None:
    assert states.after_progress("active", 10_000, 0) == "active"
    assert states.after_progress("active", 10_000, 1) == "wagering"
    assert states.after_progress("wagering", 10_000, 9_999) == "wagering"
    assert states.after_progress("wagering", 10_000, 10_000) == "completed"
    assert states.after_progress("active", 0, 0) == "completed"  # 0x: nothing to wager


def test_free_spins_complete_only_once_every_spin_is_played() -> None:
    assert states.after_progress("active", 0, 0, spins=10, spins_played=9) == "active"
    assert states.after_progress("active", 0, 0, spins=10, spins_played=10) == "completed"
    assert states.after_progress("wagering", 500, 600, spins=10, spins_played=9) == "wagering"


def test_progress_of_a_closed_or_uncredited_grant_is_refused() -> None:
    for state in ("issued", "completed", "converted", "expired"):
        with pytest.raises(states.InvalidTransition):
            states.after_progress(state, 100, 100)  # type: ignore[arg-type]


# ---- wagering -----------------------------------------------------------------------------------

def test_contribution_by_category_rounds_down() -> None:
    table = wagering.contributions(None)
    assert wagering.contribution(1000, "slots", table) == 1000
    assert wagering.contribution(1000, "table", table) == 200
    assert wagering.contribution(1234, "table", table) == 246  # 246.8 -> 246
    assert wagering.contribution(1000, "bingo", table) == 0  # unknown category: nothing
    assert wagering.contribution(1000, None, table) == 0  # unknown game: nothing


def test_an_offer_overrides_the_default_table() -> None:
    table = wagering.contributions({"table": 5, "bingo": 50})
    assert wagering.contribution(1000, "table", table) == 50
    assert wagering.contribution(1000, "bingo", table) == 500
    assert wagering.contribution(1000, "slots", table) == 1000


def test_requirement_on_bonus_or_bonus_and_deposit() -> None:
    assert wagering.requirement(35, 5000, 10_000, "bonus") == 175_000
    assert wagering.requirement(35, 5000, 10_000, "bonus_deposit") == 525_000
    assert wagering.requirement(0, 5000, 10_000, "bonus_deposit") == 0


# ---- offers and jurisdiction -----------------------------------------------------------------------

def test_ukgc_refuses_35x_and_mga_accepts_it() -> None:
    offer = terms(wagering_multiplier=35)
    with pytest.raises(Problem) as refused:
        check_jurisdiction(offer, profile("ukgc"))
    assert refused.value.status == 422 and refused.value.slug == "offer-breaks-jurisdiction"
    assert refused.value.extensions["limit"] == 10
    check_jurisdiction(offer, profile("mga"))
    check_jurisdiction(offer, profile("none"))


def test_ukgc_accepts_its_own_cap() -> None:
    check_jurisdiction(terms(wagering_multiplier=10), profile("ukgc"))
    with pytest.raises(Problem):
        check_jurisdiction(terms(wagering_multiplier=11), profile("ukgc"))


@pytest.mark.parametrize(("kind", "missing"), [
    ("deposit_match", "match_pct"), ("no_deposit", "amount"), ("free_spins", "game_id"),
    ("cashback", "cashback_pct"),
])
def test_each_kind_needs_its_fields(kind: str, missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        OfferTerms.model_validate({"name": "x", "kind": kind, "currency": "EUR"})


def test_a_contribution_above_100_is_refused() -> None:
    with pytest.raises(ValueError):
        terms(contributions={"table": 120})


# ---- eligibility ------------------------------------------------------------------------------------

def known(**over: object) -> PlayerFacts:
    return PlayerFacts(**{"known": True, "country": "MT", **over})  # type: ignore[arg-type]


def test_an_eligible_player_and_each_refusal() -> None:
    offer = terms(eligibility={"countries": ["MT", "DE"], "segments": ["vip"]})
    assert ineligible(offer, known(segments=("vip",)), NOW) is None
    assert ineligible(offer, known(country="GB", segments=("vip",)), NOW) == "country"
    assert ineligible(offer, known(segments=("new",)), NOW) == "segment"
    assert ineligible(offer, known(segments=("vip",), already_granted=True), NOW) == "already-granted"
    assert ineligible(offer, PlayerFacts(known=False), NOW) == "player-unknown"


def test_self_excluded_and_timed_out_players_are_never_eligible() -> None:
    offer = terms()
    assert ineligible(offer, known(self_excluded_until=NOW + timedelta(days=180)), NOW) == "self-excluded"
    assert ineligible(offer, known(timeout_until=NOW + timedelta(hours=1)), NOW) == "timed-out"
    # ended: eligible again
    assert ineligible(offer, known(self_excluded_until=NOW - timedelta(seconds=1)), NOW) is None


def test_first_deposit_only() -> None:
    offer = terms(kind="deposit_match", amount=None, match_pct=100, max_bonus=10_000,
                  eligibility={"first_deposit_only": True})
    assert ineligible(offer, known(), NOW, first_deposit=True) is None
    assert ineligible(offer, known(), NOW, first_deposit=False) == "first-deposit-only"


def test_amounts_are_bounded_by_their_currency() -> None:
    terms(amount=1_000_000_000 * 100)  # a billion euros: the bound itself
    with pytest.raises(ValueError, match="beyond the bound"):
        terms(amount=1_000_000_000 * 100 + 1)
    with pytest.raises(ValueError, match="unsupported currency"):
        terms(currency="XXQ")
