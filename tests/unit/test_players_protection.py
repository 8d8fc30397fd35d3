"""Time-outs, self-exclusion, reality checks and eligibility, with an injected clock."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gameplane.contracts.jurisdiction import PROFILES, profile
from gameplane.players.errors import InvalidProtectionSetting, ProtectionRefused
from gameplane.players.protection import (
    add_months,
    eligibility,
    reality_check_interval,
    refuse_lifting,
    start_self_exclusion,
    start_timeout,
)

T0 = datetime(2026, 8, 31, 9, 30, tzinfo=UTC)
UKGC = profile("ukgc")
MGA = profile("mga")
PID = uuid.uuid4()


def test_profiles_load_by_name_and_unknown_ones_fail_loudly():
    assert set(PROFILES) == {"none", "ukgc", "mga"}
    assert profile("UKGC") is UKGC
    assert UKGC.max_bonus_wagering_multiplier == 10 and MGA.max_bonus_wagering_multiplier is None
    with pytest.raises(LookupError):
        profile("nowhere")


def test_add_months_clamps_to_month_end():
    assert add_months(T0, 6) == datetime(2027, 2, 28, 9, 30, tzinfo=UTC)
    assert add_months(datetime(2027, 8, 31, tzinfo=UTC), 6) == datetime(2028, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2026, 1, 15, tzinfo=UTC), 12) == datetime(2027, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize("days", [1, 7, 30, 42])
def test_timeout_lengths_within_the_profile(days):
    assert start_timeout(T0, timedelta(days=days), UKGC, None, None) == T0 + timedelta(days=days)


@pytest.mark.parametrize("duration", [timedelta(hours=23), timedelta(days=43)])
def test_timeout_lengths_outside_the_profile_are_refused(duration):
    with pytest.raises(InvalidProtectionSetting) as err:
        start_timeout(T0, duration, UKGC, None, None)
    assert err.value.slug == "invalid-timeout"


def test_active_timeout_can_be_extended_not_shortened():
    until = T0 + timedelta(days=7)
    assert start_timeout(T0, timedelta(days=30), UKGC, until, None) == T0 + timedelta(days=30)
    with pytest.raises(ProtectionRefused) as err:
        start_timeout(T0, timedelta(days=1), UKGC, until, None)
    assert err.value.slug == "timeout-cannot-be-shortened"
    # an expired time-out does not constrain a new one
    assert start_timeout(until + timedelta(days=1), timedelta(days=1), UKGC, until, None)


def test_timeout_while_self_excluded_is_refused():
    with pytest.raises(ProtectionRefused) as err:
        start_timeout(T0, timedelta(days=1), UKGC, None, T0 + timedelta(days=200))
    assert err.value.slug == "already-self-excluded"


def test_self_exclusion_is_at_least_six_months():
    with pytest.raises(InvalidProtectionSetting):
        start_self_exclusion(T0, 5, UKGC, None)
    with pytest.raises(InvalidProtectionSetting):
        start_self_exclusion(T0, 61, UKGC, None)
    assert start_self_exclusion(T0, 6, UKGC, None) == add_months(T0, 6)


def test_self_exclusion_cannot_be_shortened_or_lifted_early():
    until = start_self_exclusion(T0, 12, UKGC, None)
    with pytest.raises(ProtectionRefused) as err:
        start_self_exclusion(T0 + timedelta(days=1), 6, UKGC, until)
    assert err.value.slug == "self-exclusion-cannot-be-shortened"
    with pytest.raises(ProtectionRefused) as err:
        refuse_lifting("self-exclusion", until, until - timedelta(seconds=1))
    assert err.value.status == 409 and err.value.slug == "self-exclusion-cannot-be-lifted"
    with pytest.raises(InvalidProtectionSetting) as err:
        refuse_lifting("self-exclusion", until, until)
    assert err.value.slug == "no-active-self-exclusion"


def test_reality_check_mandatory_under_mga_optional_under_ukgc():
    assert reality_check_interval(None, UKGC) is None
    assert reality_check_interval(30, MGA) == 30
    with pytest.raises(InvalidProtectionSetting) as err:
        reality_check_interval(None, MGA)
    assert err.value.slug == "reality-check-required"
    with pytest.raises(InvalidProtectionSetting):
        reality_check_interval(17, UKGC)


def test_eligibility_of_an_ordinary_unverified_player():
    e = eligibility(PID, T0, "unverified", None, None)
    assert (e.can_play, e.can_deposit, e.can_withdraw) == (True, True, False)
    assert e.reasons == ["kyc-not-verified"]


def test_self_excluded_player_may_withdraw_but_not_play_or_deposit():
    until = T0 + timedelta(days=183)
    e = eligibility(PID, T0, "verified", None, until)
    assert (e.can_play, e.can_deposit, e.can_withdraw) == (False, False, True)
    assert e.reasons == ["self-excluded"] and e.self_excluded_until == until
    # the day it ends, play is possible again
    assert eligibility(PID, until, "verified", None, until).can_play


def test_timed_out_player_cannot_play():
    e = eligibility(PID, T0, "verified", T0 + timedelta(days=1), None)
    assert not e.can_play and e.reasons == ["timed-out"]


def test_every_jurisdiction_the_crd_offers_has_a_profile():
    """The GamingPlatform CRD's enum is what reaches GP_PLAYERS_JURISDICTION; each must start players."""
    from pathlib import Path

    import yaml

    from gameplane.contracts.jurisdiction import profile
    from gameplane.players.settings import PlayersSettings

    crd = yaml.safe_load((Path(__file__).parents[2] / "k8s/crds/gamingplatforms.gameplane.io.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    for name in spec["jurisdiction"]["enum"]:
        assert profile(name).minimum_age >= 18
        assert PlayersSettings(jurisdiction=name).profile.name == name
