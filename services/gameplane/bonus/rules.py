"""Which offers may exist (the jurisdiction profile) and who may receive them (eligibility): pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gameplane.contracts.bonus import OFFER_BREAKS_JURISDICTION, IneligibleReason, OfferTerms
from gameplane.contracts.jurisdiction import JurisdictionProfile


def check_jurisdiction(terms: OfferTerms, profile: JurisdictionProfile) -> None:
    """Refuse (422 offer-breaks-jurisdiction) terms the active profile does not allow."""
    cap = profile.max_bonus_wagering_multiplier
    if cap is not None and terms.wagering_multiplier > cap:
        raise OFFER_BREAKS_JURISDICTION(
            f"wagering {terms.wagering_multiplier}x is above the {cap}x that {profile.name} allows",
            jurisdiction=profile.name, rule="max_bonus_wagering_multiplier", limit=cap,
            value=terms.wagering_multiplier)


@dataclass(frozen=True)
class PlayerFacts:
    """What bonus knows of a player (its copy, fed by players' events, plus its own segments)."""

    known: bool
    country: str | None = None
    segments: tuple[str, ...] = ()
    self_excluded_until: datetime | None = None
    timeout_until: datetime | None = None
    already_granted: bool = False


def protection_refusal(player: PlayerFacts, now: datetime) -> IneligibleReason | None:
    """Self-excluded or timed-out players never receive a bonus, whatever the offer."""
    if player.self_excluded_until is not None and player.self_excluded_until > now:
        return "self-excluded"
    if player.timeout_until is not None and player.timeout_until > now:
        return "timed-out"
    return None


def ineligible(terms: OfferTerms, player: PlayerFacts, now: datetime, *,
               first_deposit: bool | None = None) -> IneligibleReason | None:
    """Why this player may not receive this offer now, or None. `first_deposit`: for a deposit
    match, whether the deposit being matched is the player's first."""
    if not player.known:
        return "player-unknown"
    refusal = protection_refusal(player, now)
    if refusal is not None:
        return refusal
    rules = terms.eligibility
    if rules.countries and (player.country or "").upper() not in {c.upper() for c in rules.countries}:
        return "country"
    if rules.segments and not set(rules.segments) & set(player.segments):
        return "segment"
    if player.already_granted:
        return "already-granted"
    if terms.kind == "deposit_match" and rules.first_deposit_only and first_deposit is False:
        return "first-deposit-only"
    return None
