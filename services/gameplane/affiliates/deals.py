"""Deal maths: what an affiliate earns for one month, from per-player money figures. Pure, no I/O.

Decisions (docs/integration/affiliates.md states them to affiliates):
- A deal runs in one currency; a statement covers the players of that currency.
- CPA: paid once per player, in the month the player qualifies. A player qualifies when the first
  deposit is at least `cpa_min_first_deposit` AND the stakes within `cpa_stakes_days` days of
  registration reach `cpa_min_stakes` (both bounds inclusive; the window is UTC days: the day of
  registration and the N − 1 following). The qualification is dated by the ledger, not by when the
  events arrived: the later of the first deposit and the start of the UTC day the stakes reached the
  minimum. A deal without a CPA amount never qualifies anyone (no qualification postback either).
- Revenue share on NGR, "NGR band" model: the month's net NGR (NGR plus the negative balance carried
  in) falls into exactly one band; that band's rate applies to the whole of it. A band starts at
  its `from_ngr` INCLUSIVE and ends one minor unit below the next band's start. The first band
  starts at 0.
- Negative carry-over: a negative net NGR earns no revenue share and, unless the deal says
  `carry_over=False`, is carried into the next month's net NGR. A positive month clears it.
- Hybrid: a deal with both a CPA amount and revenue-share bands (usually lower rates); both apply.
- Sub-affiliate override: the parent earns, of each direct sub-affiliate's own commission (its CPA
  + revenue share, not the sub's own overrides: one level only), the override rate set on that
  sub-affiliate, rounded down per sub-affiliate.
- NGR, GGR and gaming tax come from gameplane.contracts.kpis (tax on the month's aggregate, never
  per player). Every product rounds down to the minor unit (the operator never pays a fraction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gameplane.contracts import kpis

BP = 10_000


@dataclass(frozen=True, slots=True)
class Tier:
    from_ngr: int  # inclusive lower bound of the band, minor units of the deal's currency
    basis_points: int


@dataclass(frozen=True, slots=True)
class Deal:
    currency: str
    cpa_amount: int = 0
    cpa_min_first_deposit: int = 0
    cpa_min_stakes: int = 0
    cpa_stakes_days: int = 30
    revshare: tuple[Tier, ...] = ()
    carry_over: bool = True

    def __post_init__(self) -> None:
        if min(self.cpa_amount, self.cpa_min_first_deposit, self.cpa_min_stakes) < 0 or self.cpa_stakes_days < 1:
            raise ValueError("CPA amounts and thresholds must not be negative, the stakes window at least a day")
        starts = [t.from_ngr for t in self.revshare]
        if self.revshare and (starts[0] != 0 or starts != sorted(set(starts))):
            raise ValueError("revenue-share bands must start at 0 and rise strictly")
        if any(not 0 <= t.basis_points <= BP for t in self.revshare):
            raise ValueError("a band's rate lies between 0 and 10000 basis points")


def band_rate(deal: Deal, net_ngr: int) -> int:
    """The basis points of the band `net_ngr` falls in (0 below the first band or without bands)."""
    rate = 0
    for t in deal.revshare:
        if net_ngr >= t.from_ngr:
            rate = t.basis_points
    return rate if net_ngr >= 0 else 0


def qualifies(deal: Deal, first_deposit: int | None, stakes_in_window: int) -> bool:
    """Whether a player earns the deal's CPA (see the module docstring for the rule)."""
    return (deal.cpa_amount > 0 and first_deposit is not None
            and first_deposit >= deal.cpa_min_first_deposit and stakes_in_window >= deal.cpa_min_stakes)


@dataclass(frozen=True, slots=True)
class PlayerMonth:
    """One referred player's month: a pseudonymous reference, the money figures, whether the CPA
    was earned this month."""

    player_ref: str
    totals: kpis.MoneyTotals
    cpa: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    player_ref: str
    stakes: int
    wins: int
    ggr: int
    bonus_cost: int
    payment_fees: int
    ngr_before_tax: int
    cpa: int


@dataclass(frozen=True, slots=True)
class Statement:
    currency: str
    lines: tuple[Line, ...]
    totals: kpis.MoneyTotals
    ggr: int
    bonus_cost: int
    payment_fees: int
    gaming_tax: int
    ngr: int
    carried_in: int
    net_ngr: int
    band_bp: int
    revshare: int
    cpa_count: int
    cpa: int
    own_commission: int
    subs: tuple[tuple[int, int], ...] = field(default_factory=tuple)
    override: int = 0
    commission: int = 0
    carry_out: int = 0


def statement(deal: Deal, players: Sequence[PlayerMonth], *, carried_in: int = 0, tax_basis_points: int = 0,
              subs: Sequence[tuple[int, int]] = ()) -> Statement:
    """One affiliate's month. `carried_in`: the negative NGR carried from the previous month (≤ 0);
    `subs`: (own commission, override basis points) of each direct sub-affiliate for the same month."""
    if carried_in > 0:
        raise ValueError("only a negative NGR is carried over")
    if any(not 0 <= bp <= BP or c < 0 for c, bp in subs):
        raise ValueError("an override lies between 0 and 10000 basis points of non-negative commissions")
    total = sum((p.totals for p in players), kpis.MoneyTotals())
    lines = tuple(Line(p.player_ref, p.totals.stakes, p.totals.wins, kpis.ggr(p.totals), kpis.bonus_cost(p.totals),
                       p.totals.payment_fees, kpis.ngr(p.totals), deal.cpa_amount if p.cpa else 0)
                  for p in players)
    gross = kpis.ggr(total)
    month_ngr = kpis.ngr(total, tax_basis_points)
    net = month_ngr + carried_in
    rate = band_rate(deal, net)
    revshare = net * rate // BP if net > 0 else 0
    carry_out = net if net < 0 and deal.carry_over else 0
    cpa_count = sum(1 for p in players if p.cpa)
    cpa = cpa_count * deal.cpa_amount
    own = revshare + cpa
    override = sum(c * bp // BP for c, bp in subs)
    return Statement(
        currency=deal.currency, lines=lines, totals=total, ggr=gross, bonus_cost=kpis.bonus_cost(total),
        payment_fees=total.payment_fees, gaming_tax=kpis.gaming_tax(gross, tax_basis_points), ngr=month_ngr,
        carried_in=carried_in, net_ngr=net, band_bp=rate, revshare=revshare, cpa_count=cpa_count, cpa=cpa,
        own_commission=own, subs=tuple((c, bp) for c, bp in subs), override=override,
        commission=own + override, carry_out=carry_out)
