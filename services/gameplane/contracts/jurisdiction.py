"""Jurisdiction profiles: the regulatory values that switch player-protection and bonus rules.

A platform runs under one profile (`GP_<SERVICE>_JURISDICTION`, from `spec.jurisdiction` of the
GamingPlatform). Rules read values from here instead of hard-wiring them, so a new regulator is a
new entry in `PROFILES`, not a code change in every service. Pure data, no I/O.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

JurisdictionName = Literal["none", "ukgc", "mga"]


class JurisdictionProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: JurisdictionName
    minimum_age: int = Field(description="age in years below which a player may not register")
    limit_increase_cooling_off: timedelta = Field(
        description="how long an increase or removal of a deposit/loss/session limit waits before it applies")
    timeout_min: timedelta = Field(description="shortest time-out a player may take")
    timeout_max: timedelta = Field(description="longest time-out; beyond it the player self-excludes")
    self_exclusion_min_months: int = Field(description="shortest self-exclusion, in calendar months")
    self_exclusion_max_months: int = Field(description="longest self-exclusion a player may choose")
    deposit_limit_prompt_at_registration: bool
    certified_games_only: bool = Field(
        default=True, description="a game must list this jurisdiction among those it is certified for")
    reality_check_mandatory: bool = Field(description="a reality-check interval must always be set")
    reality_check_default_minutes: int | None = Field(description="interval set for a new player")
    reality_check_intervals_minutes: tuple[int, ...] = Field(description="intervals a player may choose")
    max_bonus_wagering_multiplier: int | None = Field(description="cap on bonus wagering requirements")
    max_slot_stake_minor: int | None = Field(description="cap per slot spin, in minor units of stake_currency")
    max_slot_stake_young_adult_minor: int | None = Field(description="the cap for young adults")
    young_adult_max_age: int | None = Field(description="players up to this age get the young-adult cap")
    stake_currency: str | None = Field(description="currency of the stake caps")
    min_slot_spin_ms: int | None = Field(description="minimum duration of one slot spin")
    kyc_aml_threshold_minor: int = Field(
        description="cumulative deposits or withdrawals above which identity must be verified")
    kyc_aml_threshold_currency: str
    gaming_tax_basis_points: int = Field(
        default=0, ge=0, le=10_000,
        description="gaming duty on a period's positive GGR, in basis points (NGR subtracts it: contracts.kpis)")


_REALITY_CHECK_INTERVALS = (10, 15, 20, 30, 45, 60, 90, 120)

PROFILES: dict[str, JurisdictionProfile] = {
    # No regulator selected (the CRD's default): the player-protection floor of docs/reference/
    # player-protection.md — 18+, 24 h cooling-off, time-outs, 6-month self-exclusion — and no
    # regulator-specific stake, spin or bonus caps.
    "none": JurisdictionProfile(
        # No regulator, no certification list to check a game against: every enabled game is offered.
        name="none", certified_games_only=False, minimum_age=18, limit_increase_cooling_off=timedelta(hours=24),
        timeout_min=timedelta(hours=24), timeout_max=timedelta(weeks=6),
        self_exclusion_min_months=6, self_exclusion_max_months=60,
        deposit_limit_prompt_at_registration=True,
        reality_check_mandatory=False, reality_check_default_minutes=None,
        reality_check_intervals_minutes=_REALITY_CHECK_INTERVALS,
        max_bonus_wagering_multiplier=None,
        max_slot_stake_minor=None, max_slot_stake_young_adult_minor=None, young_adult_max_age=None,
        stake_currency=None, min_slot_spin_ms=None,
        kyc_aml_threshold_minor=200_000, kyc_aml_threshold_currency="EUR",
    ),
    "ukgc": JurisdictionProfile(
        name="ukgc", minimum_age=18, limit_increase_cooling_off=timedelta(hours=24),
        timeout_min=timedelta(hours=24), timeout_max=timedelta(weeks=6),
        self_exclusion_min_months=6, self_exclusion_max_months=60,
        deposit_limit_prompt_at_registration=True,
        reality_check_mandatory=False, reality_check_default_minutes=None,
        reality_check_intervals_minutes=_REALITY_CHECK_INTERVALS,
        max_bonus_wagering_multiplier=10,
        max_slot_stake_minor=500, max_slot_stake_young_adult_minor=200, young_adult_max_age=24,
        stake_currency="GBP", min_slot_spin_ms=2500,
        kyc_aml_threshold_minor=200_000, kyc_aml_threshold_currency="EUR",
        # Remote Gaming Duty: 40 % of gross gaming profit from 1 April 2026 (21 % before).
        gaming_tax_basis_points=4000,
    ),
    "mga": JurisdictionProfile(
        name="mga", minimum_age=18, limit_increase_cooling_off=timedelta(hours=24),
        timeout_min=timedelta(hours=24), timeout_max=timedelta(weeks=6),
        self_exclusion_min_months=6, self_exclusion_max_months=60,
        deposit_limit_prompt_at_registration=True,
        reality_check_mandatory=True, reality_check_default_minutes=60,
        reality_check_intervals_minutes=_REALITY_CHECK_INTERVALS,
        max_bonus_wagering_multiplier=None,
        max_slot_stake_minor=None, max_slot_stake_young_adult_minor=None, young_adult_max_age=None,
        stake_currency=None, min_slot_spin_ms=None,
        kyc_aml_threshold_minor=200_000, kyc_aml_threshold_currency="EUR",
        # Malta's gaming tax: 5 % of gross gaming revenue (from players in Malta; a platform under
        # this profile is assumed to report that share).
        gaming_tax_basis_points=500,
    ),
}


def game_allowed(game_jurisdictions: list[str], jurisdiction: str) -> bool:
    """Whether a game certified for `game_jurisdictions` may be offered under `jurisdiction`."""
    return not profile(jurisdiction).certified_games_only or jurisdiction.lower() in game_jurisdictions


def profile(name: str) -> JurisdictionProfile:
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise LookupError(f"unknown jurisdiction {name!r}; known: {', '.join(sorted(PROFILES))}") from None
