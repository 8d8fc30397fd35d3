"""The one definition of every business KPI (docs: shared reference "Analytics (definitions used everywhere)").

analytics' KPI API, affiliates' statements and the Prometheus recording rules behind the business
dashboard all compute from here; nothing else may restate a formula. Money KPIs are integers in
minor units of one currency (never summed across currencies); ratios are floats and `None` where
the denominator is zero. Pure functions, no I/O.

Ledger meaning of each input, per currency and period (UTC days):
- `stakes`: every bet's amount (cash + bonus) minus the bets rolled back. `bonus_stakes` the bonus part.
- `wins`: every win's amount (cash + bonus). `bonus_wins` the bonus part. A free-spin win is not a
  win of the house (the bonus liability pays it); it reaches the figures only if it is converted.
- `bonus_converted`: bonus money that became cash (the wallet's `bonus_cost` account).
- `payment_fees`: fees the payment providers charged (their settlement reports, booked by the wallet).

So GGR is the house account's net movement, and NGR is the real money the platform kept: bonus
money lost to the house was never real (it is removed again as bonus cost), bonus money converted
to cash is.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from typing import NamedTuple

# How far observed RTP may stray from the certified value before it is flagged, in standard
# errors of the observed figure (3 ≈ 99.7 % of honest samples stay inside).
RTP_DRIFT_Z = 3.0


@dataclass(frozen=True, slots=True)
class MoneyTotals:
    """The summable money figures of one currency over one period (or one affiliate, game ...)."""

    stakes: int = 0
    wins: int = 0
    bonus_stakes: int = 0
    bonus_wins: int = 0
    bonus_converted: int = 0
    payment_fees: int = 0
    deposits: int = 0
    withdrawals: int = 0

    def __add__(self, other: MoneyTotals) -> MoneyTotals:
        return MoneyTotals(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def ggr(t: MoneyTotals) -> int:
    """Gross gaming revenue: stakes − wins."""
    return t.stakes - t.wins


def bonus_cost(t: MoneyTotals) -> int:
    """Bonus money the house won back (it was never real) plus bonus money converted to cash."""
    return t.bonus_stakes - t.bonus_wins + t.bonus_converted


def gaming_tax(gross: int, basis_points: int) -> int:
    """Tax on a period's positive GGR at the jurisdiction's rate, rounded down to the minor unit."""
    if basis_points < 0:
        raise ValueError("a tax rate must not be negative")
    return max(gross, 0) * basis_points // 10_000


def ngr(t: MoneyTotals, tax_basis_points: int = 0) -> int:
    """Net gaming revenue: GGR − bonus cost − payment fees − gaming taxes."""
    gross = ggr(t)
    return gross - bonus_cost(t) - t.payment_fees - gaming_tax(gross, tax_basis_points)


def _ratio(num: int | float, den: int | float) -> float | None:
    return None if den == 0 else num / den


def hold_pct(t: MoneyTotals) -> float | None:
    """GGR as a percentage of stakes."""
    r = _ratio(ggr(t), t.stakes)
    return None if r is None else 100.0 * r


def rtp(stakes: int, wins: int) -> float | None:
    """Observed return to player, as a fraction (0.96 = 96 %)."""
    return _ratio(wins, stakes)


def conversion(ftd: int, registrations: int) -> float | None:
    """First-time depositors over registrations of the same period."""
    return _ratio(ftd, registrations)


def arpu(gross: int, active_players: int) -> float | None:
    """GGR per active player (minor units, fractional)."""
    return _ratio(gross, active_players)


@dataclass(frozen=True, slots=True)
class RoundMoments:
    """Per-round sums for one game and currency: enough to put a confidence band on observed RTP.

    A round is one (stake s, win w) pair after rollbacks; observed RTP is the ratio estimator
    R = Σw / Σs, whose variance is Σ(w − R·s)² / (Σs)² = (Σw² − 2R·Σsw + R²·Σs²) / (Σs)².
    """

    rounds: int = 0
    stakes: int = 0
    wins: int = 0
    stakes_sq: int = 0
    wins_sq: int = 0
    stakes_wins: int = 0

    def __add__(self, other: RoundMoments) -> RoundMoments:
        return RoundMoments(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


class RtpCheck(NamedTuple):
    observed: float | None
    certified: float
    band: float | None  # half-width of the band around `certified`
    drift: bool  # the observed value lies outside certified ± band


def rtp_check(m: RoundMoments, certified: float, z: float = RTP_DRIFT_Z) -> RtpCheck:
    """Observed RTP against the certified value; drift only when it lies outside z standard errors.

    With fewer than two rounds there is no spread to judge by, so nothing is flagged.
    """
    observed = rtp(m.stakes, m.wins)
    if observed is None or m.rounds < 2:
        return RtpCheck(observed, certified, None, False)
    var = (m.wins_sq - 2 * observed * m.stakes_wins + observed * observed * m.stakes_sq) / (m.stakes * m.stakes)
    band = z * math.sqrt(max(var, 0.0))
    return RtpCheck(observed, certified, band, abs(observed - certified) > band)


# ---- the same definitions over Prometheus counters (the business dashboard's recording rules) ----
# analytics exports the inputs as counters in minor units, labelled by currency (and game, provider):
METRIC = "gameplane_analytics_{}_minor_total"
INPUTS = ("stakes", "wins", "bonus_stakes", "bonus_wins", "bonus_converted", "payment_fees",
          "deposits", "withdrawals")
# A counter only grows, so a rollback cannot take a stake back from `stakes`: the stakes rolled back
# have counters of their own, and the PromQL forms subtract them (stakes = placed - rolled back).
ROLLED_BACK = ("stakes", "bonus_stakes")
METRIC_ROLLED_BACK = "gameplane_analytics_rolled_back_{}_minor_total"


def _inc(name: str, window: str, by: str) -> str:
    return f"sum by ({by}) (increase({METRIC.format(name)}[{window}]))"


def promql(kpi: str, window: str = "1h", by: str = "currency", tax_basis_points: int = 0) -> str:
    """The PromQL of one KPI over `window`, grouped `by` (a label list). Prometheus has no floor:
    the tax in `ngr` is exact only to a fraction of a minor unit."""
    i = {n: _inc(n, window, by) for n in INPUTS}
    for n in ROLLED_BACK:
        back = f"sum by ({by}) (increase({METRIC_ROLLED_BACK.format(n)}[{window}]))"
        i[n] = f"({i[n]} - {back})"
    gross = f"({i['stakes']} - {i['wins']})"
    cost = f"({i['bonus_stakes']} - {i['bonus_wins']} + {i['bonus_converted']})"
    tax = f" - clamp_min({gross}, 0) * {tax_basis_points} / 10000" if tax_basis_points else ""
    exprs = {
        "ggr": gross,
        "bonus_cost": cost,
        "ngr": f"{gross} - {cost} - {i['payment_fees']}{tax}",
        "hold_pct": f"100 * {gross} / {i['stakes']}",
        "rtp": f"{i['wins']} / {i['stakes']}",
        "deposits": i["deposits"],
        "withdrawals": i["withdrawals"],
    }
    try:
        return exprs[kpi]
    except KeyError:
        raise LookupError(f"no PromQL form for KPI {kpi!r}; known: {', '.join(sorted(exprs))}") from None
