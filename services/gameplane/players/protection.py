"""Time-outs, self-exclusion, reality checks and what a player may do because of them.

Protections can always be made stronger and never weaker before their time: a time-out or a
self-exclusion can be extended, not shortened or lifted. Pure: the caller passes `now`.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import datetime, timedelta

from gameplane.contracts.jurisdiction import JurisdictionProfile
from gameplane.contracts.players import Eligibility, EligibilityReason, KycState
from gameplane.players.errors import InvalidProtectionSetting, ProtectionRefused


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months later; the day is clamped to the month's end (31 Aug + 6 months = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def active(until: datetime | None, now: datetime) -> bool:
    return until is not None and now < until


def start_timeout(now: datetime, duration: timedelta, profile: JurisdictionProfile,
                  timeout_until: datetime | None, self_excluded_until: datetime | None) -> datetime:
    """The end of a time-out taken now for `duration`."""
    if active(self_excluded_until, now):
        raise ProtectionRefused("already-self-excluded", "Player is self-excluded",
                                "a time-out adds nothing to an active self-exclusion",
                                self_excluded_until=_iso(self_excluded_until))
    if not profile.timeout_min <= duration <= profile.timeout_max:
        raise InvalidProtectionSetting(
            "invalid-timeout", "Time-out outside the allowed range",
            f"a time-out lasts from {_human(profile.timeout_min)} to {_human(profile.timeout_max)}; "
            "longer breaks are a self-exclusion")
    until = now + duration
    if active(timeout_until, now) and timeout_until is not None and until < timeout_until:
        raise ProtectionRefused("timeout-cannot-be-shortened", "Time-out cannot be shortened",
                                "an active time-out can only be extended", timeout_until=_iso(timeout_until))
    return until


def start_self_exclusion(now: datetime, months: int, profile: JurisdictionProfile,
                         self_excluded_until: datetime | None) -> datetime:
    """The end of a self-exclusion taken now for `months` calendar months."""
    if not profile.self_exclusion_min_months <= months <= profile.self_exclusion_max_months:
        raise InvalidProtectionSetting(
            "invalid-self-exclusion", "Self-exclusion outside the allowed range",
            f"a self-exclusion lasts from {profile.self_exclusion_min_months} to "
            f"{profile.self_exclusion_max_months} months")
    until = add_months(now, months)
    if active(self_excluded_until, now) and self_excluded_until is not None and until < self_excluded_until:
        raise ProtectionRefused("self-exclusion-cannot-be-shortened", "Self-exclusion cannot be shortened",
                                "an active self-exclusion can only be extended",
                                self_excluded_until=_iso(self_excluded_until))
    return until


def refuse_lifting(kind: str, until: datetime | None, now: datetime) -> None:
    """Lifting a time-out or self-exclusion early is never allowed; say so with the end date."""
    if not active(until, now):
        raise InvalidProtectionSetting(f"no-active-{kind}", f"No active {kind}", f"there is no {kind} to lift")
    raise ProtectionRefused(f"{kind}-cannot-be-lifted", f"An active {kind} cannot be lifted early",
                            f"it ends at {_iso(until)}", until=_iso(until))


def reality_check_interval(minutes: int | None, profile: JurisdictionProfile) -> int | None:
    if minutes is None:
        if profile.reality_check_mandatory:
            raise InvalidProtectionSetting("reality-check-required", "A reality check is mandatory",
                                           f"the {profile.name} profile requires a reality-check interval",
                                           allowed=list(profile.reality_check_intervals_minutes))
        return None
    if minutes not in profile.reality_check_intervals_minutes:
        raise InvalidProtectionSetting("invalid-reality-check", "Reality-check interval not offered",
                                       f"{minutes} minutes is not one of the offered intervals",
                                       allowed=list(profile.reality_check_intervals_minutes))
    return minutes


def eligibility(player_id: uuid.UUID, now: datetime, kyc_state: KycState, timeout_until: datetime | None,
                self_excluded_until: datetime | None) -> Eligibility:
    reasons: list[EligibilityReason] = []
    excluded = active(self_excluded_until, now)
    timed_out = active(timeout_until, now)
    if excluded:
        reasons.append("self-excluded")
    if timed_out:
        reasons.append("timed-out")
    verified = kyc_state == "verified"
    if not verified:
        reasons.append("kyc-not-verified")
    blocked = excluded or timed_out
    return Eligibility(
        player_id=player_id,
        can_play=not blocked,
        can_deposit=not blocked,
        # Excluded players must still be able to take their cash out; identity is the only gate.
        can_withdraw=verified,
        reasons=reasons,
        kyc_state=kyc_state,
        timeout_until=timeout_until if timed_out else None,
        self_excluded_until=self_excluded_until if excluded else None,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _human(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours % (24 * 7) == 0:
        return f"{hours // (24 * 7)} week(s)"
    if hours % 24 == 0:
        return f"{hours // 24} day(s)"
    return f"{hours} hour(s)"
