"""contracts.kpis against figures worked out by hand (the arithmetic is in the comments): every KPI,
the gaming duty's rounding and its floor at zero, the ratios' empty denominators, the RTP drift
band from per-round moments, and the PromQL forms the business dashboard records."""

from __future__ import annotations

import math

import pytest

from gameplane.contracts import kpis
from gameplane.contracts.kpis import MoneyTotals, RoundMoments

# A month of one currency: stakes 10 000, wins 9 000; bonus stakes 1 500, bonus wins 1 200,
# bonus converted 250; fees 80.
MONTH = MoneyTotals(stakes=10_000, wins=9_000, bonus_stakes=1_500, bonus_wins=1_200, bonus_converted=250,
                    payment_fees=80, deposits=20_000, withdrawals=7_000)


def test_ggr_is_stakes_less_wins() -> None:
    assert kpis.ggr(MONTH) == 1_000  # 10 000 - 9 000
    assert kpis.ggr(MoneyTotals(stakes=500, wins=800)) == -300


def test_bonus_cost_is_bonus_the_house_won_back_plus_bonus_converted() -> None:
    assert kpis.bonus_cost(MONTH) == 550  # 1 500 - 1 200 + 250
    assert kpis.bonus_cost(MoneyTotals(bonus_stakes=100, bonus_wins=400)) == -300  # bonus wins beyond bonus stakes


def test_ngr_subtracts_bonus_cost_fees_and_the_duty_on_positive_ggr() -> None:
    assert kpis.ngr(MONTH) == 370  # 1 000 - 550 - 80
    assert kpis.ngr(MONTH, 500) == 320  # duty 5 % of 1 000 = 50
    assert kpis.ngr(MONTH, 4_000) == -30  # duty 40 % of 1 000 = 400: 1 000 - 550 - 80 - 400
    loss = MoneyTotals(stakes=500, wins=800, payment_fees=10)
    assert kpis.ngr(loss, 4_000) == -310  # GGR -300, no duty on a loss, fees 10


def test_gaming_tax_rounds_down_to_the_minor_unit_and_is_never_negative() -> None:
    assert kpis.gaming_tax(1_999, 500) == 99  # 99.95
    assert kpis.gaming_tax(2_000, 500) == 100
    assert kpis.gaming_tax(1, 4_000) == 0  # 0.4
    assert kpis.gaming_tax(-5_000, 4_000) == 0
    assert kpis.gaming_tax(1_000, 0) == 0
    with pytest.raises(ValueError):
        kpis.gaming_tax(1_000, -1)


def test_hold_and_rtp_are_ratios_of_stakes_and_none_without_stakes() -> None:
    assert kpis.hold_pct(MONTH) == pytest.approx(10.0)  # 100 * 1 000 / 10 000
    assert kpis.rtp(10_000, 9_000) == pytest.approx(0.9)
    assert kpis.hold_pct(MoneyTotals()) is None
    assert kpis.rtp(0, 50) is None


def test_conversion_and_arpu() -> None:
    assert kpis.conversion(3, 12) == pytest.approx(0.25)
    assert kpis.conversion(0, 0) is None
    assert kpis.arpu(1_000, 8) == pytest.approx(125.0)
    assert kpis.arpu(1_000, 0) is None


def test_money_totals_add_field_by_field() -> None:
    a = MoneyTotals(stakes=1, wins=2, bonus_stakes=3, bonus_wins=4, bonus_converted=5, payment_fees=6, deposits=7,
                    withdrawals=8)
    assert a + a == MoneyTotals(2, 4, 6, 8, 10, 12, 14, 16)


def moments(rounds: list[tuple[int, int]]) -> RoundMoments:
    total = RoundMoments()
    for s, w in rounds:
        total += RoundMoments(1, s, w, s * s, w * w, s * w)
    return total


def test_rtp_band_from_hand_worked_variance_inside_the_band() -> None:
    # rounds (stake, win): (10, 0) (10, 20) (10, 5) (10, 15): R = 40 / 40 = 1.0
    # residuals w - R*s: -10, 10, -5, 5; their squares sum to 250; variance 250 / 40^2 = 0.15625
    # band = 3 * sqrt(0.15625) = 3 * 0.3952847... = 1.1858541...
    m = moments([(10, 0), (10, 20), (10, 5), (10, 15)])
    assert (m.rounds, m.stakes, m.wins, m.stakes_sq, m.wins_sq, m.stakes_wins) == (4, 40, 40, 400, 650, 400)
    check = kpis.rtp_check(m, 0.96)
    assert check.observed == pytest.approx(1.0)
    assert check.band == pytest.approx(1.1858541225631423)
    assert check.drift is False  # |1.0 - 0.96| = 0.04 lies inside


def test_rtp_drift_is_flagged_only_past_the_band() -> None:
    # rounds (100, 40) (100, 60): R = 0.5; residuals -10, 10 -> 200; variance 200 / 200^2 = 0.005
    # band = 3 * sqrt(0.005) = 0.2121320...; certified 0.70 is 0.20 away (inside), 0.72 is 0.22 (outside)
    m = moments([(100, 40), (100, 60)])
    assert kpis.rtp_check(m, 0.70).band == pytest.approx(3 * math.sqrt(0.005))
    assert kpis.rtp_check(m, 0.70).drift is False
    assert kpis.rtp_check(m, 0.72).drift is True
    assert kpis.rtp_check(m, 0.96).drift is True
    # a narrower z flags what the default lets pass: 0.20 away, band 1 * 0.0707...
    assert kpis.rtp_check(m, 0.70, z=1.0).drift is True


def test_rtp_check_flags_nothing_without_a_spread_to_judge_by() -> None:
    one = kpis.rtp_check(moments([(100, 5_000)]), 0.96)
    assert one.observed == pytest.approx(50.0) and one.band is None and one.drift is False
    none = kpis.rtp_check(RoundMoments(), 0.96)
    assert none.observed is None and none.drift is False


def test_promql_forms_read_the_analytics_counters_and_subtract_rolled_back_stakes() -> None:
    ggr = kpis.promql("ggr", window="1d", by="currency")
    assert ggr == (
        "((sum by (currency) (increase(gameplane_analytics_stakes_minor_total[1d])) - "
        "sum by (currency) (increase(gameplane_analytics_rolled_back_stakes_minor_total[1d]))) - "
        "sum by (currency) (increase(gameplane_analytics_wins_minor_total[1d])))")
    ngr = kpis.promql("ngr", by="currency, game", tax_basis_points=500)
    assert "gameplane_analytics_payment_fees_minor_total[1h]" in ngr
    assert "gameplane_analytics_rolled_back_bonus_stakes_minor_total" in ngr
    assert ngr.endswith(" * 500 / 10000")
    assert "* 0 / 10000" not in kpis.promql("ngr")  # no duty term without a rate
    with pytest.raises(LookupError):
        kpis.promql("dau")
