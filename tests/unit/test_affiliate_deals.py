"""The affiliates' deal maths against statements worked out by hand (every expected figure below
is written out, with its working in a comment, never computed by the code under test)."""

from __future__ import annotations

import pytest

from gameplane.affiliates.deals import Deal, PlayerMonth, Tier, band_rate, qualifies, statement
from gameplane.contracts.kpis import MoneyTotals

BANDS = (Tier(0, 2_500), Tier(100_000, 3_500), Tier(500_000, 4_500))
REVSHARE = Deal("EUR", revshare=BANDS)
CPA = Deal("EUR", cpa_amount=10_000, cpa_min_first_deposit=2_000, cpa_min_stakes=5_000, cpa_stakes_days=30)


def _won(ggr: int, ref: str = "p1") -> PlayerMonth:
    """A player whose month is a plain GGR (stakes `ggr`, no wins, no bonus, no fees) when ggr ≥ 0."""
    return PlayerMonth(ref, MoneyTotals(stakes=max(ggr, 0), wins=max(-ggr, 0)))


@pytest.mark.parametrize(("ngr", "band", "revshare"), [
    (99_999, 2_500, 24_999),     # 99 999 × 25 % = 24 999.75 → 24 999
    (100_000, 3_500, 35_000),    # exactly at the second band's start: the higher rate, on the whole of it
    (499_999, 3_500, 174_999),   # 499 999 × 35 % = 174 999.65 → 174 999
    (500_000, 4_500, 225_000),   # exactly at the third band
    (1, 2_500, 0),               # 0.25 → 0
    (0, 2_500, 0),             # 0 lies in the first band; 25 % of nothing
])
def test_each_revenue_share_band_boundary_is_inclusive_at_its_start(ngr: int, band: int, revshare: int) -> None:
    s = statement(REVSHARE, [_won(ngr)])
    assert (s.ngr, s.band_bp, s.revshare, s.commission) == (ngr, band, revshare, revshare)


def test_a_statement_with_bonus_cost_fees_and_gaming_tax_matches_the_hand_computed_one() -> None:
    p1 = PlayerMonth("p1", MoneyTotals(stakes=50_000, wins=20_000, bonus_stakes=10_000, bonus_wins=4_000,
                                       bonus_converted=3_000, payment_fees=500))
    p2 = PlayerMonth("p2", MoneyTotals(stakes=30_000, wins=45_000, payment_fees=200))
    s = statement(REVSHARE, [p1, p2], tax_basis_points=500)
    # GGR 80 000 − 65 000 = 15 000; bonus cost 10 000 − 4 000 + 3 000 = 9 000; fees 700;
    # tax 15 000 × 5 % = 750 on the aggregate; NGR 15 000 − 9 000 − 700 − 750 = 4 550; 25 % → 1 137.5 → 1 137
    assert (s.ggr, s.bonus_cost, s.payment_fees, s.gaming_tax, s.ngr) == (15_000, 9_000, 700, 750, 4_550)
    assert (s.band_bp, s.revshare, s.commission, s.carry_out) == (2_500, 1_137, 1_137, 0)
    # lines carry no tax (it is due on the month's aggregate): p1 30 000 − 9 000 − 500; p2 −15 000 − 200
    assert [(ln.player_ref, ln.ggr, ln.bonus_cost, ln.ngr_before_tax) for ln in s.lines] == [
        ("p1", 30_000, 9_000, 20_500), ("p2", -15_000, 0, -15_200)]


def test_the_gaming_tax_is_due_on_the_aggregate_not_on_each_winning_player() -> None:
    # per player the tax would be 10 000 × 40 % = 4 000 on p1 alone; on the aggregate GGR 10 000 − 10 000 = 0 it is 0
    s = statement(REVSHARE, [_won(10_000, "p1"), _won(-10_000, "p2")], tax_basis_points=4_000)
    assert (s.ggr, s.gaming_tax, s.ngr, s.revshare) == (0, 0, 0, 0)


def test_negative_ngr_carries_over_into_the_next_month_and_a_positive_month_clears_it() -> None:
    m1 = statement(REVSHARE, [_won(-30_000)])
    assert (m1.ngr, m1.revshare, m1.carry_out) == (-30_000, 0, -30_000)
    m2 = statement(REVSHARE, [_won(130_000)], carried_in=m1.carry_out)
    # 130 000 − 30 000 = 100 000: exactly at the second band → 35 000; nothing left to carry
    assert (m2.net_ngr, m2.band_bp, m2.revshare, m2.carry_out) == (100_000, 3_500, 35_000, 0)
    # a month that does not cover the carried loss carries the rest
    m3 = statement(REVSHARE, [_won(20_000)], carried_in=-50_000)
    assert (m3.net_ngr, m3.revshare, m3.carry_out) == (-30_000, 0, -30_000)


def test_a_deal_without_carry_over_starts_every_month_from_zero() -> None:
    deal = Deal("EUR", revshare=BANDS, carry_over=False)
    m1 = statement(deal, [_won(-30_000)])
    assert (m1.revshare, m1.carry_out) == (0, 0)
    m2 = statement(deal, [_won(130_000)], carried_in=m1.carry_out)
    assert (m2.net_ngr, m2.band_bp, m2.revshare) == (130_000, 3_500, 45_500)  # 130 000 × 35 %


@pytest.mark.parametrize(("first_deposit", "stakes", "expected"), [
    (2_000, 5_000, True),     # both exactly at the minimum
    (1_999, 5_000, False),    # deposit one minor unit below
    (2_000, 4_999, False),    # stakes one minor unit below
    (50_000, 0, False),       # a big deposit alone is not enough
    (None, 10_000, False),    # never deposited
])
def test_cpa_qualification_edges(first_deposit: int | None, stakes: int, expected: bool) -> None:
    assert qualifies(CPA, first_deposit, stakes) is expected


def test_a_deal_without_a_cpa_amount_never_qualifies_anyone() -> None:
    assert qualifies(REVSHARE, 1_000_000, 1_000_000) is False


def test_cpa_is_paid_once_per_qualified_player_even_when_ngr_is_negative() -> None:
    players = [PlayerMonth("a", MoneyTotals(stakes=5_000, wins=20_000), cpa=True), _won(1_000, "b")]
    s = statement(CPA, players)
    # NGR 6 000 − 20 000 = −14 000 (no revenue share in a CPA deal), one CPA of 10 000
    assert (s.ngr, s.revshare, s.cpa_count, s.cpa, s.commission, s.carry_out) == (-14_000, 0, 1, 10_000, 10_000,
                                                                                -14_000)
    assert [ln.cpa for ln in s.lines] == [10_000, 0]


def test_hybrid_pays_cpa_and_the_lower_revenue_share() -> None:
    deal = Deal("EUR", cpa_amount=5_000, cpa_min_first_deposit=1_000, revshare=(Tier(0, 1_500),))
    players = [PlayerMonth("a", MoneyTotals(stakes=30_000), cpa=True), PlayerMonth("b", MoneyTotals(stakes=10_000))]
    s = statement(deal, players)
    # NGR 40 000 × 15 % = 6 000, plus one CPA of 5 000
    assert (s.revshare, s.cpa, s.own_commission, s.commission) == (6_000, 5_000, 11_000, 11_000)


def test_sub_affiliate_override_is_each_subs_rate_of_its_own_commission_rounded_down_per_sub() -> None:
    s = statement(REVSHARE, [_won(100_000)], subs=[(11_000, 1_000), (4_001, 2_500)])
    # own 35 000; override 10 % × 11 000 = 1 100, plus 25 % × 4 001 = 1 000.25 → 1 000; 2 100 in all
    assert (s.own_commission, s.override, s.commission) == (35_000, 2_100, 37_100)


def test_no_subs_no_override() -> None:
    s = statement(REVSHARE, [_won(100_000)])
    assert (s.override, s.commission) == (0, 35_000)


def test_band_rate_below_zero_is_zero() -> None:
    assert band_rate(REVSHARE, -1) == 0
    assert band_rate(REVSHARE, 0) == 2_500


@pytest.mark.parametrize("bad", [
    lambda: Deal("EUR", revshare=(Tier(10, 2_500),)),                    # first band not at 0
    lambda: Deal("EUR", revshare=(Tier(0, 2_500), Tier(0, 3_000))),      # not strictly rising
    lambda: Deal("EUR", revshare=(Tier(0, 10_001),)),                    # above 100 %
    lambda: Deal("EUR", cpa_amount=-1),
    lambda: Deal("EUR", cpa_stakes_days=0),
    lambda: statement(REVSHARE, [], carried_in=1),
    lambda: statement(REVSHARE, [], subs=[(1_000, 10_001)]),
    lambda: statement(REVSHARE, [], subs=[(-1, 1_000)]),
])
def test_impossible_deals_and_inputs_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]
