"""Routes of the analytics service (contracts/analytics.py describes them).

back office  GET /internal/analytics/kpis, GET /internal/analytics/rtp
             (service token: backoffice, plus a staff token with the role finance, admin or support)
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from gameplane.analytics import games, reports
from gameplane.analytics.settings import AnalyticsSettings
from gameplane.contracts.analytics import (
    GAME_UNKNOWN,
    INVALID_PERIOD,
    MAX_RANGE_DAYS,
    PATH_KPIS,
    PATH_RTP,
    KpiFilters,
    KpiReport,
    RtpReport,
)
from gameplane.kit.app import Runtime
from gameplane.kit.auth import callers
from gameplane.kit.problems import responses as refusals
from gameplane.kit.staff import StaffContext, staff

PREFIX = "/internal/analytics"
backoffice = APIRouter(prefix=PREFIX, tags=["back office"], dependencies=[Depends(callers("backoffice"))])
READERS = staff("finance", "admin", "support")



def _ident() -> Any:
    # a fresh Query per parameter: FastAPI binds one Query object to one parameter
    return Query(None, min_length=1, max_length=200, pattern=r"^[^\x00]+$")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _period(period_from: date, period_to: date) -> None:
    if period_to < period_from:
        raise INVALID_PERIOD(f"`to` ({period_to}) is before `from` ({period_from})")
    if (period_to - period_from).days + 1 > MAX_RANGE_DAYS:
        raise INVALID_PERIOD(f"at most {MAX_RANGE_DAYS} days at once", max_days=MAX_RANGE_DAYS)


@backoffice.get(PATH_KPIS.removeprefix(PREFIX), response_model=KpiReport, responses={
    **refusals(INVALID_PERIOD), 200: {"content": {"text/csv": {}}, "description": "the report (JSON, or CSV)"}})
async def kpis(request: Request, _who: StaffContext = Depends(READERS),
               period_from: date = Query(alias="from"), period_to: date = Query(alias="to"),
               currency: str | None = Query(None, pattern=r"^[A-Z]{3}$",
                                             description="ISO 4217; default: every currency, one row each"),
               game: str | None = _ident(), provider: str | None = _ident(),
               country: str | None = Query(None, pattern=r"^[A-Z]{2}$"), affiliate: uuid.UUID | None = None,
               group: Literal["day", "range"] = "day", format: Literal["json", "csv"] = "json",
               ) -> KpiReport | Response:
    """Money KPIs, registrations, FTD and activity per UTC day (`group=day`) or over the whole
    period (`group=range`: the gaming tax on the period's aggregate), per currency. `format=csv`
    answers the rows as text/csv (the columns of KpiRow)."""
    _period(period_from, period_to)
    rt = _rt(request)
    settings: AnalyticsSettings = rt.settings  # type: ignore[assignment]
    filters = KpiFilters(game=game, provider=provider, country=country, affiliate=affiliate)
    q = reports.Query(period_from, period_to, currency, filters)
    async with rt.database.session() as s:
        rows = await reports.kpi_rows(s, q, group == "day", settings.tax_basis_points)
    if format == "csv":
        name = f"kpis-{period_from}-{period_to}.csv"
        return Response(reports.csv_of(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return KpiReport(period_from=period_from, period_to=period_to, tax_basis_points=settings.tax_basis_points,
                     filters={k: str(v) for k, v in filters.model_dump().items() if v is not None}, rows=rows)


@backoffice.get(PATH_RTP.removeprefix(PREFIX), response_model=RtpReport,
                responses=refusals(INVALID_PERIOD, GAME_UNKNOWN))
async def rtp(request: Request, _who: StaffContext = Depends(READERS),
              period_from: date = Query(alias="from"), period_to: date = Query(alias="to"),
              currency: str = Query(pattern=r"^[A-Z]{3}$"), game: str | None = _ident(),
              provider: str | None = _ident()) -> RtpReport:
    """Observed RTP per game over the period's settled rounds (after rollbacks) against the game's
    certified RTP, with the drift band of contracts.kpis.rtp_check."""
    _period(period_from, period_to)
    rt = _rt(request)
    settings: AnalyticsSettings = rt.settings  # type: ignore[assignment]
    q = reports.Query(period_from, period_to, currency, KpiFilters(game=game, provider=provider))
    async with rt.database.transaction() as s:
        found = await reports.rtp_rows(s, q)
        rows = []
        for game_id, prov, cur, moments in found:
            certified = await games.certified_rtp(rt, s, game_id, settings.game_cache_seconds)
            rows.append(reports.rtp_row(game_id, prov, cur, moments, certified))
        if game is not None and not found and await games.certified_rtp(rt, s, game,
                                                                         settings.game_cache_seconds) is None:
            raise GAME_UNKNOWN(f"games knows no game {game!r}", game_id=game)
    return RtpReport(period_from=period_from, period_to=period_to, rows=rows)
