"""The analytics service's KPI API: its models and problems. Analytics publishes no events.

Internal routes (service token of the back office plus a staff token with the role finance, admin
or support):
  GET /internal/analytics/kpis   ?from=YYYY-MM-DD&to=YYYY-MM-DD (inclusive UTC days)
                                 [&currency=EUR][&game=..][&provider=..][&country=MT][&affiliate=<uuid>]
                                 [&group=day|range][&format=json|csv]  -> KpiReport (or text/csv)
  GET /internal/analytics/rtp    ?from=..&to=..&currency=EUR[&game=..][&provider=..]  -> RtpReport

Every figure is defined in gameplane.contracts.kpis; this module only names the fields.
Money in integer minor units of `currency` (never summed across currencies). `game`/`provider`
restrict to play money (stakes, wins and their bonus parts): deposits, withdrawals, fees and
bonus conversions belong to no game and are 0 under such a filter.
"""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field

from gameplane.kit.problems import ProblemType

PATH_KPIS = "/internal/analytics/kpis"
PATH_RTP = "/internal/analytics/rtp"
MAX_RANGE_DAYS = 366

INVALID_PERIOD = ProblemType(422, "invalid-period", "The period is empty, reversed or too long")
GAME_UNKNOWN = ProblemType(404, "game-unknown", "No such game in the catalogue")


class KpiRow(BaseModel):
    """One currency over one day (`day` set) or over the whole period asked for (`day` null)."""

    day: date | None
    currency: str
    stakes: int
    wins: int
    bonus_stakes: int
    bonus_wins: int
    bonus_converted: int
    payment_fees: int
    deposits: int
    withdrawals: int = Field(description="withdrawals posted (money out); holds and voids are not counted")
    ggr: int
    bonus_cost: int
    gaming_tax: int = Field(description="on this row's own aggregate (a day's, or the whole period's)")
    ngr: int
    hold_pct: float | None
    rtp: float | None
    bonus_granted: int
    free_spin_wins: int
    bonus_forfeited: int
    chargebacks: int
    registrations: int
    ftd: int
    conversion: float | None
    active_players: int = Field(description="distinct players who placed a bet in the row's period (DAU on a day row)")
    mau: int | None = Field(description="distinct players who placed a bet in the day's calendar month up to and "
                            "including the day (day rows only)")
    arpu: float | None
    logins: int = Field(default=0, description="player logins (players.logged_in) of players of this currency")
    game_sessions: int = Field(default=0, description="game sessions started (sessions.started)")


class KpiReport(BaseModel):
    period_from: date
    period_to: date
    tax_basis_points: int
    filters: dict[str, str]
    rows: list[KpiRow]


class RtpRow(BaseModel):
    game_id: str
    provider: str
    currency: str
    rounds: int
    stakes: int
    wins: int
    observed: float | None
    certified: float | None = Field(description="the game's certified RTP (games' catalogue); null if unknown")
    band: float | None = Field(description="half-width of the drift band around `certified`")
    drift: bool


class RtpReport(BaseModel):
    period_from: date
    period_to: date
    rows: list[RtpRow]


class KpiFilters(BaseModel):
    game: str | None = None
    provider: str | None = None
    country: str | None = None
    affiliate: uuid.UUID | None = None
