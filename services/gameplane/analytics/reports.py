"""KPI reports from the rollups. The sums come from SQL; every KPI from them through
gameplane.contracts.kpis (nothing here restates a formula)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.analytics.facts import SUMS
from gameplane.contracts import kpis
from gameplane.contracts.analytics import KpiFilters, KpiRow, RtpRow

_MONEY_FIELDS = ("stakes", "wins", "bonus_stakes", "bonus_wins", "bonus_converted", "payment_fees", "deposits",
                 "withdrawals")
assert _MONEY_FIELDS == kpis.INPUTS


@dataclass
class Bucket:
    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMS, 0))
    registrations: int = 0
    logins: int = 0
    sessions: int = 0
    active: int = 0
    mau: int | None = None


@dataclass(frozen=True)
class Query:
    period_from: date
    period_to: date
    currency: str | None
    filters: KpiFilters

    @property
    def by_player(self) -> bool:
        """Country and affiliate are properties of the player: those filters join the player dimension."""
        return self.filters.country is not None or self.filters.affiliate is not None

    @property
    def play_only(self) -> bool:
        return self.filters.game is not None or self.filters.provider is not None

    def where(self, alias: str) -> tuple[str, dict[str, Any]]:
        clauses = [f"{alias}.day BETWEEN :f AND :t"]
        params: dict[str, Any] = {"f": self.period_from, "t": self.period_to}
        if self.currency is not None:
            clauses.append(f"{alias}.currency = :cur")
            params["cur"] = self.currency
        if self.filters.game is not None:
            clauses.append(f"{alias}.game_id = :game")
            params["game"] = self.filters.game
        if self.filters.provider is not None:
            clauses.append(f"{alias}.provider = :provider")
            params["provider"] = self.filters.provider
        clauses += self.player_clauses(params)
        return " AND ".join(clauses), params

    def player_clauses(self, params: dict[str, Any]) -> list[str]:
        out = []
        if self.filters.country is not None:
            out.append("p.country = :country")
            params["country"] = self.filters.country
        if self.filters.affiliate is not None:
            out.append("p.affiliate_id = :affiliate")
            params["affiliate"] = self.filters.affiliate
        return out


_SUM_SELECT = ", ".join(f"COALESCE(SUM(r.{c}), 0)::bigint AS {c}" for c in SUMS)


async def _sums(s: AsyncSession, q: Query, per_day: bool) -> dict[tuple[date | None, str], dict[str, int]]:
    where, params = q.where("r")
    source = "rollup_player_day r JOIN players p ON p.player_id = r.player_id" if q.by_player else "rollup_day r"
    day = "r.day" if per_day else "NULL::date"
    rows = (await s.execute(text(
        f"SELECT {day} AS day, r.currency, {_SUM_SELECT} FROM {source} WHERE {where} GROUP BY 1, 2"),
        params)).mappings().all()
    return {(r["day"], r["currency"].strip()): {c: int(r[c]) for c in SUMS} for r in rows}


async def _active(s: AsyncSession, q: Query, per_day: bool) -> dict[tuple[date | None, str], int]:
    where, params = q.where("r")
    join = " JOIN players p ON p.player_id = r.player_id" if q.by_player else ""
    day = "r.day" if per_day else "NULL::date"
    rows = (await s.execute(text(
        f"SELECT {day} AS day, r.currency, count(DISTINCT r.player_id) AS n FROM rollup_player_day r{join} "
        f"WHERE {where} AND r.bets > 0 GROUP BY 1, 2"), params)).all()
    return {(r.day, r.currency.strip()): int(r.n) for r in rows}


async def _mau(s: AsyncSession, q: Query) -> dict[tuple[date, str], int]:
    """Per day of the period: distinct players with a bet from the 1st of the day's month to the day."""
    month_start = q.period_from.replace(day=1)
    wide = Query(month_start, q.period_to, q.currency, q.filters)
    where, params = wide.where("r")
    join = " JOIN players p ON p.player_id = r.player_id" if q.by_player else ""
    rows = (await s.execute(text(
        f"SELECT r.currency, date_trunc('month', r.day)::date AS month, min(r.day) AS first "
        f"FROM rollup_player_day r{join} WHERE {where} AND r.bets > 0 "
        f"GROUP BY r.currency, r.player_id, date_trunc('month', r.day)"), params)).all()
    firsts: dict[tuple[str, date], list[date]] = defaultdict(list)
    for r in rows:
        firsts[(r.currency.strip(), r.month)].append(r.first)
    out: dict[tuple[date, str], int] = {}
    for (cur, _month), days in firsts.items():
        days.sort()
        # every first day of the month counts, also those before the period (its rows read them)
        for d in sorted(set(days)):
            out[(d, cur)] = sum(1 for x in days if x <= d)
    return out


async def _registrations(s: AsyncSession, q: Query, per_day: bool) -> dict[tuple[date | None, str], int]:
    if q.play_only:
        return {}
    clauses = ["p.registered_day BETWEEN :f AND :t"]
    params: dict[str, Any] = {"f": q.period_from, "t": q.period_to}
    if q.currency is not None:
        clauses.append("p.currency = :cur")
        params["cur"] = q.currency
    clauses += q.player_clauses(params)
    day = "p.registered_day" if per_day else "NULL::date"
    rows = (await s.execute(text(
        f"SELECT {day} AS day, p.currency, count(*) AS n FROM players p WHERE {' AND '.join(clauses)} "
        f"GROUP BY 1, 2"), params)).all()
    return {(r.day, r.currency.strip()): int(r.n) for r in rows}


async def _activity(s: AsyncSession, q: Query, per_day: bool) -> dict[tuple[date | None, str, str], int]:
    """Logins and game sessions started, per day (or period), currency (the player's) and kind.
    Not play money: none under a game or provider filter; a player analytics has not seen register
    has no currency yet and is not counted."""
    if q.play_only:
        return {}
    clauses = ["f.day BETWEEN :f AND :t", "f.kind IN ('login', 'session_started')", "p.currency IS NOT NULL"]
    params: dict[str, Any] = {"f": q.period_from, "t": q.period_to}
    if q.currency is not None:
        clauses.append("p.currency = :cur")
        params["cur"] = q.currency
    clauses += q.player_clauses(params)
    day = "f.day" if per_day else "NULL::date"
    rows = (await s.execute(text(
        f"SELECT {day} AS day, p.currency, f.kind, count(*) AS n FROM player_facts f "
        f"JOIN players p ON p.player_id = f.player_id WHERE {' AND '.join(clauses)} GROUP BY 1, 2, 3"),
        params)).all()
    return {(r.day, r.currency.strip(), r.kind): int(r.n) for r in rows}


def kpi_row(day: date | None, currency: str, b: Bucket, tax_bp: int) -> KpiRow:
    t = kpis.MoneyTotals(**{n: b.sums[n] for n in kpis.INPUTS})
    gross = kpis.ggr(t)
    return KpiRow(
        day=day, currency=currency, **{n: b.sums[n] for n in kpis.INPUTS},
        ggr=gross, bonus_cost=kpis.bonus_cost(t), gaming_tax=kpis.gaming_tax(gross, tax_bp),
        ngr=kpis.ngr(t, tax_bp), hold_pct=kpis.hold_pct(t), rtp=kpis.rtp(t.stakes, t.wins),
        bonus_granted=b.sums["bonus_granted"], free_spin_wins=b.sums["free_spin_wins"],
        bonus_forfeited=b.sums["bonus_forfeited"], chargebacks=b.sums["chargebacks"],
        registrations=b.registrations, ftd=b.sums["ftd"], conversion=kpis.conversion(b.sums["ftd"], b.registrations),
        active_players=b.active, mau=b.mau, arpu=kpis.arpu(gross, b.active), logins=b.logins,
        game_sessions=b.sessions)


async def kpi_rows(s: AsyncSession, q: Query, per_day: bool, tax_bp: int) -> list[KpiRow]:
    buckets: dict[tuple[date | None, str], Bucket] = defaultdict(Bucket)
    for key, sums in (await _sums(s, q, per_day)).items():
        buckets[key].sums = sums
    for key, n in (await _active(s, q, per_day)).items():
        buckets[key].active = n
    for key, n in (await _registrations(s, q, per_day)).items():
        buckets[key].registrations = n
    for (day, cur, kind), n in (await _activity(s, q, per_day)).items():
        if kind == "login":
            buckets[(day, cur)].logins = n
        else:
            buckets[(day, cur)].sessions = n
    if per_day:
        mau = await _mau(s, q)
        for (day, cur), b in buckets.items():
            assert day is not None
            # the month's distinct players up to this day: the latest count on or before it
            b.mau = max((n for (d, c), n in mau.items() if c == cur and d <= day and d.month == day.month
                         and d.year == day.year), default=0)
    return [kpi_row(day, cur, buckets[(day, cur)], tax_bp)
            for day, cur in sorted(buckets, key=lambda k: (k[0] or date.min, k[1]))]


async def rtp_rows(s: AsyncSession, q: Query) -> list[tuple[str, str, str, kpis.RoundMoments]]:
    where, params = q.where("r")
    rows = (await s.execute(text(
        "SELECT r.game_id, r.provider, r.currency, count(*) AS n, SUM(r.stake) AS s, SUM(r.win) AS w,"
        " SUM(r.stake::numeric * r.stake) AS ss, SUM(r.win::numeric * r.win) AS ww,"
        " SUM(r.stake::numeric * r.win) AS sw "
        + ("FROM rounds r JOIN players p ON p.player_id = r.player_id " if q.by_player else "FROM rounds r ")
        + f"WHERE {where} AND r.stake > 0 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"), params)).all()
    return [(r.game_id, r.provider, r.currency.strip(),
             kpis.RoundMoments(int(r.n), int(r.s), int(r.w), int(r.ss), int(r.ww), int(r.sw))) for r in rows]


def rtp_row(game_id: str, provider: str, currency: str, m: kpis.RoundMoments, certified: float | None) -> RtpRow:
    if certified is None:
        return RtpRow(game_id=game_id, provider=provider, currency=currency, rounds=m.rounds, stakes=m.stakes,
                      wins=m.wins, observed=kpis.rtp(m.stakes, m.wins), certified=None, band=None, drift=False)
    check = kpis.rtp_check(m, certified)
    return RtpRow(game_id=game_id, provider=provider, currency=currency, rounds=m.rounds, stakes=m.stakes,
                  wins=m.wins, observed=check.observed, certified=check.certified, band=check.band,
                  drift=check.drift)


def csv_of(rows: list[KpiRow]) -> str:
    import csv
    import io

    out = io.StringIO()
    names = list(KpiRow.model_fields)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(names)
    for r in rows:
        d = r.model_dump(mode="json")
        w.writerow(["" if d[n] is None else d[n] for n in names])
    return out.getvalue()
