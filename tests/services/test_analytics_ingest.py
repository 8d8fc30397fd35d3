"""The analytics service on real PostgreSQL and a NATS of its own: events in, facts and KPIs out.

Every expected figure is worked out by hand in the test from the events it publishes (comments
show the sums); nothing is computed with contracts.kpis or analytics code. The service runs under
the mga profile: gaming duty 5 % of a period's positive GGR, rounded down.
Each test uses a currency of its own, so the module's tests share one running service.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from analyticslib import by_day, kpis, problem, publish
from fastapi import FastAPI
from paymentslib import eventually
from prometheus_client import REGISTRY
from sqlalchemy import text

from gameplane.analytics.app import build_app
from gameplane.analytics.partitions import partition_days
from gameplane.analytics.settings import AnalyticsSettings
from gameplane.contracts.affiliates import PlayerAttributed
from gameplane.contracts.players import LoggedIn, PlayerRegistered
from gameplane.contracts.sessions import SessionStarted
from gameplane.contracts.wallet import (
    BetPlaced,
    BonusConverted,
    BonusGranted,
    DepositCredited,
    FeeCharged,
    RolledBack,
    WinSettled,
    WithdrawalHeld,
    WithdrawalPosted,
    WithdrawalVoided,
)
from gameplane.devtools.infra import NatsServer
from gameplane.devtools.testing import as_service, as_staff, running
from gameplane.kit.events import Envelope, Event

TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=UTC)


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = NatsServer(Path(tmp_path_factory.mktemp("analytics-nats")))
    server.start()
    yield server
    server.stop()


class Analytics:
    def __init__(self, app: FastAPI, http: httpx.AsyncClient, nats_url: str) -> None:
        self.app, self.http, self.nats_url = app, http, nats_url

    async def emit(self, *events: Event, again: bool = False, envs: list[Envelope] | None = None) -> list[Envelope]:
        out = [Envelope.wrap(e, e.event_type.split(".")[0]) for e in events]
        await publish(self.nats_url, *(envs or []), *out, again=again)
        return out

    async def report(self, day_from: date, day_to: date, **params: Any) -> dict[str, Any]:
        return await kpis(self.app, self.http, day_from, day_to, **params)  # type: ignore[no-any-return]

    async def row_until(self, day: date | None, currency: str, what: str, day_from: date | None = None,
                        day_to: date | None = None, **want: Any) -> dict[str, Any]:
        """The KPI row of `currency` (on `day`, or over the period with group=range) once it shows `want`."""
        params = {"currency": currency, **({"group": "range"} if day is None else {})}
        params.update(want.pop("params", {}))

        async def check() -> dict[str, Any] | None:
            rep = await self.report(day_from or day or TODAY, day_to or day or TODAY, **params)
            rows = [r for r in rep["rows"] if r["day"] == (day.isoformat() if day else None)]
            if rows and all(rows[0][k] == v for k, v in want.items()):
                return rows[0]
            return None
        return await eventually(check, what=f"{what}: {want}")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def analytics(module_service_settings: Any, own_nats: NatsServer) -> AsyncIterator[Analytics]:
    app = build_app(module_service_settings(AnalyticsSettings, nats_url=own_nats.url, jurisdiction="mga",
                                            log_level="WARNING"))
    async with running(app) as http:
        yield Analytics(app, http, own_nats.url)


def counter(name: str, currency: str) -> float:
    """A money counter of analytics summed over games and providers, from the process's registry."""
    metric = f"gameplane_analytics_{name}_minor_total"
    return sum(s.value for m in REGISTRY.collect() for s in m.samples
               if s.name == metric and s.labels.get("currency") == currency)


def registered(pid: uuid.UUID, country: str, currency: str, when: datetime) -> PlayerRegistered:
    return PlayerRegistered(player_id=pid, email=f"{pid.hex[:8]}@example.com", country=country, currency=currency,
                            date_of_birth=date(1990, 1, 1), registered_at=when)


def bet(pid: uuid.UUID, cur: str, amount: int, when: datetime, game: str = "g1", provider: str = "rgs",
        bonus: int = 0, round_id: str | None = None) -> BetPlaced:
    return BetPlaced(transaction_id=uuid.uuid4(), player_id=pid, currency=cur, amount=amount, cash=amount - bonus,
                     bonus=bonus, occurred_at=when, round_id=round_id or uuid.uuid4().hex, game_id=game,
                     provider=provider)


def win(pid: uuid.UUID, cur: str, amount: int, when: datetime, game: str = "g1", provider: str = "rgs",
        bonus: int = 0, round_id: str | None = None) -> WinSettled:
    return WinSettled(transaction_id=uuid.uuid4(), player_id=pid, currency=cur, amount=amount, cash=amount - bonus,
                      bonus=bonus, occurred_at=when, round_id=round_id or uuid.uuid4().hex, game_id=game,
                      provider=provider, round_closed=True)


def deposit(pid: uuid.UUID, cur: str, amount: int, when: datetime, first: bool = False) -> DepositCredited:
    return DepositCredited(transaction_id=uuid.uuid4(), player_id=pid, currency=cur, amount=amount, cash=amount,
                           bonus=0, occurred_at=when, psp="simpsp", first_deposit=first)


# ---- ingest and the KPIs of a day -----------------------------------------------------------------

async def test_a_days_events_become_facts_and_every_kpi_of_the_day_is_the_hand_computed_figure(
        analytics: Analytics) -> None:
    cur, t = "SEK", at(TODAY, 10)
    p1, p2 = uuid.uuid4(), uuid.uuid4()
    hold1, hold2 = uuid.uuid4(), uuid.uuid4()
    money = dict(transaction_id=uuid.uuid4(), currency=cur, occurred_at=t)
    events: list[Event] = [
        registered(p1, "MT", cur, t), registered(p2, "DE", cur, t),
        deposit(p1, cur, 5_000, t, first=True), deposit(p1, cur, 2_000, t), deposit(p2, cur, 3_000, t, first=True),
        bet(p1, cur, 1_000, t, bonus=200), win(p1, cur, 1_500, t, bonus=300),
        bet(p2, cur, 500, t), bet(p2, cur, 2_000, t, game="g2"), win(p2, cur, 100, t, game="g2"),
        WithdrawalHeld(**{**money, "transaction_id": uuid.uuid4()}, player_id=p1, amount=1_000, cash=-1_000, bonus=0,
                       hold_id=hold1),
        WithdrawalPosted(**{**money, "transaction_id": uuid.uuid4()}, player_id=p1, amount=1_000, cash=0, bonus=0,
                         hold_id=hold1, remaining=0),
        WithdrawalHeld(**{**money, "transaction_id": uuid.uuid4()}, player_id=p2, amount=500, cash=-500, bonus=0,
                       hold_id=hold2),
        WithdrawalVoided(**{**money, "transaction_id": uuid.uuid4()}, player_id=p2, amount=500, cash=500, bonus=0,
                         hold_id=hold2, reason="requested"),
        BonusGranted(**{**money, "transaction_id": uuid.uuid4()}, player_id=p1, amount=1_000, cash=0, bonus=1_000,
                     grant_id="grant-sek"),
        # the grant held 600 when converted with a cap of 400: 400 to cash, 200 back to the liability
        BonusConverted(**{**money, "transaction_id": uuid.uuid4()}, player_id=p1, amount=400, cash=400, bonus=-600,
                       grant_id="grant-sek", forfeited=200),
        FeeCharged(**{**money, "transaction_id": uuid.uuid4()}, player_id=p1, amount=150, cash=0, bonus=0,
                   psp="simpsp", psp_reference="fee-1", payment_reference="pay-1"),
    ]
    sent = await analytics.emit(*events)
    # stakes 1000 + 500 + 2000 = 3500; wins 1500 + 100 = 1600; GGR 1900
    row = await analytics.row_until(TODAY, cur, "the day's facts", stakes=3_500, wins=1_600, deposits=10_000,
                                    withdrawals=1_000, payment_fees=150, bonus_converted=400, registrations=2)
    assert row["bonus_stakes"] == 200 and row["bonus_wins"] == 300
    assert row["ggr"] == 1_900
    assert row["bonus_cost"] == 200 - 300 + 400 == 300
    assert row["gaming_tax"] == 95  # 1900 * 5 % = 95
    assert row["ngr"] == 1_900 - 300 - 150 - 95 == 1_355
    assert row["hold_pct"] == pytest.approx(100 * 1_900 / 3_500)
    assert row["rtp"] == pytest.approx(1_600 / 3_500)
    assert row["ftd"] == 2 and row["conversion"] == pytest.approx(1.0)
    assert row["active_players"] == 2 and row["mau"] == 2 and row["arpu"] == pytest.approx(950.0)
    assert row["bonus_granted"] == 1_000 and row["bonus_forfeited"] == 200 and row["free_spin_wins"] == 0

    # The same bet and first deposit arrive again (a redelivery past the stream's de-duplication),
    # then one new bet of 7 and deposit of 1: once those show, the replays were read before them.
    await analytics.emit(envs=[sent[5], sent[2]], again=True)
    await analytics.emit(bet(p1, cur, 7, t), deposit(p2, cur, 1, t))
    row = await analytics.row_until(TODAY, cur, "the markers after the replays", stakes=3_507, deposits=10_001)
    assert row["ftd"] == 2 and row["bonus_stakes"] == 200 and row["active_players"] == 2
    async with analytics.app.state.runtime.database.session() as s:
        n = (await s.execute(text("SELECT count(*) FROM money_facts WHERE event_id IN (:a, :b)"),
                             {"a": sent[5].id, "b": sent[2].id})).scalar_one()
    assert n == 2
    # the dashboard's counters moved with the facts, once each (this currency is this test's alone)
    assert counter("stakes", cur) == 3_507 and counter("deposits", cur) == 10_001
    assert counter("bonus_converted", cur) == 400 and counter("withdrawals", cur) == 1_000
    assert counter("rolled_back_stakes", cur) == 0


async def test_a_replay_lands_once_even_when_the_processed_mark_is_gone(analytics: Analytics) -> None:
    """The fact table's own key (day, event id) is the second line: a replay whose processed_events
    mark was lost (a restore from an older backup) is still not counted twice."""
    cur, t = "CZK", at(TODAY, 9)
    pid = uuid.uuid4()
    first = await analytics.emit(bet(pid, cur, 300, t))
    await analytics.row_until(TODAY, cur, "the bet", stakes=300)
    async with analytics.app.state.runtime.database.transaction() as s:
        gone = await s.execute(text("DELETE FROM processed_events WHERE event_id = :e"), {"e": first[0].id})
        assert gone.rowcount == 1  # negative control: the mark existed, the kit would have caught the replay
    await analytics.emit(envs=first, again=True)
    await analytics.emit(bet(pid, cur, 11, t))
    await analytics.row_until(TODAY, cur, "the marker after the replay", stakes=311)


# ---- rollbacks and late events ------------------------------------------------------------------------

async def test_a_rollback_reverses_its_bet_on_the_rollbacks_own_day(analytics: Analytics) -> None:
    cur = "NOK"
    pid = uuid.uuid4()
    placed = bet(pid, cur, 1_000, at(YESTERDAY, 23, 59, 59), bonus=300, round_id="r-nok", game="g-nok")
    back = RolledBack(transaction_id=uuid.uuid4(), player_id=pid, currency=cur, amount=1_000, cash=700, bonus=300,
                      occurred_at=at(TODAY, 0, 0, 1), bet_transaction_id=placed.transaction_id, round_id="r-nok",
                      game_id="g-nok", provider="rgs")
    await analytics.emit(placed, back)
    today = await analytics.row_until(TODAY, cur, "the rollback", stakes=-1_000)
    # asked for today alone: the month's players include yesterday's bettor (unless today is the 1st)
    assert today["mau"] == (1 if YESTERDAY.month == TODAY.month else 0)
    assert today["bonus_stakes"] == -300 and today["wins"] == 0 and today["ggr"] == -1_000
    assert today["gaming_tax"] == 0  # no duty on a negative GGR
    assert today["ngr"] == -1_000 - (-300) == -700
    assert today["active_players"] == 0  # a rollback is no bet placed
    report = await analytics.report(YESTERDAY, TODAY, currency=cur)
    rows = by_day(report)
    assert rows[(YESTERDAY.isoformat(), cur)]["stakes"] == 1_000
    assert rows[(YESTERDAY.isoformat(), cur)]["bonus_stakes"] == 300
    assert rows[(YESTERDAY.isoformat(), cur)]["active_players"] == 1
    both = await analytics.report(YESTERDAY, TODAY, currency=cur, group="range")
    (total,) = both["rows"]
    assert total["stakes"] == 0 and total["ggr"] == 0 and total["hold_pct"] is None and total["ngr"] == 0
    async with analytics.app.state.runtime.database.session() as s:
        stake = (await s.execute(text("SELECT stake FROM rounds WHERE round_id = 'r-nok'"))).scalar_one()
    assert stake == 0
    # a counter cannot go down: the rolled-back stake has its own, which the PromQL forms subtract
    assert counter("stakes", cur) == 1_000 and counter("rolled_back_stakes", cur) == 1_000
    assert counter("rolled_back_bonus_stakes", cur) == 300


async def test_a_late_event_lands_in_its_own_days_partition_created_on_demand(analytics: Analytics) -> None:
    cur = "DKK"
    old_day = TODAY - timedelta(days=40)
    db = analytics.app.state.runtime.database
    before = await partition_days(db, "money_facts")
    assert YESTERDAY in before and old_day not in before  # made ahead: a week back and forth; not 40 days back
    pid = uuid.uuid4()
    sent = await analytics.emit(deposit(pid, cur, 4_200, at(old_day, 15), first=True),
                                deposit(pid, cur, 800, at(YESTERDAY, 22)))
    await analytics.row_until(old_day, cur, "the late deposit", deposits=4_200, ftd=1)
    await analytics.row_until(YESTERDAY, cur, "yesterday's deposit", deposits=800, ftd=0)
    assert old_day in await partition_days(db, "money_facts")
    async with db.session() as s:
        homes = dict((await s.execute(text(
            "SELECT event_id, tableoid::regclass::text FROM money_facts WHERE event_id IN (:a, :b)"),
            {"a": sent[0].id, "b": sent[1].id})).all())
    assert homes == {sent[0].id: f"money_facts_{old_day:%Y%m%d}", sent[1].id: f"money_facts_{YESTERDAY:%Y%m%d}"}
    # a month's figure over both: 4200 + 800
    total = (await analytics.report(old_day, TODAY, currency=cur, group="range"))["rows"][0]
    assert total["deposits"] == 5_000 and total["ftd"] == 1


async def test_a_transaction_that_met_a_day_without_partition_after_an_insert_fails_fast_then_lands(
        analytics: Analytics) -> None:
    """A consumer's batch is one transaction: after an insert into player_facts, an event of a day
    with no partition used to wait, on a second connection, for that very transaction — forever
    (PostgreSQL cannot see a wait that runs through Python). It now fails within the lock timeout,
    and one transaction per event, as the consumer retries, lands both."""
    from sqlalchemy.exc import DBAPIError

    from gameplane.analytics.facts import Ingest
    from gameplane.analytics.partitions import Partitions

    db = analytics.app.state.runtime.database
    ingest = Ingest(db, Partitions())  # a process that has not seen the old day yet
    old_day, pid = TODAY - timedelta(days=55), uuid.uuid4()
    assert old_day not in await partition_days(db, "player_facts")
    ids = (uuid.uuid4(), uuid.uuid4())
    with pytest.raises(DBAPIError, match="lock timeout"):
        async with asyncio.timeout(30), db.transaction() as s:  # stuck before the fix: TimeoutError here
            await ingest.player_fact(s, ids[0], at(TODAY, 9), "login", pid)
            await ingest.player_fact(s, ids[1], at(old_day, 9), "login", pid)
    for event_id, day in zip(ids, (TODAY, old_day), strict=True):
        async with db.transaction() as s:
            assert await ingest.player_fact(s, event_id, at(day, 9), "login", pid)
    assert old_day in await partition_days(db, "player_facts")


# ---- filters --------------------------------------------------------------------------------------------

async def test_filters_by_game_provider_country_and_an_affiliate_attributed_after_the_bets(
        analytics: Analytics) -> None:
    cur, t = "CHF", at(TODAY, 11)
    p1, p2 = uuid.uuid4(), uuid.uuid4()
    affiliate = uuid.uuid4()
    # bets first, the registrations and the attribution after them (events need not arrive in order)
    await analytics.emit(bet(p1, cur, 1_000, t, game="ga", provider="pa"), bet(p2, cur, 300, t, game="gb",
                                                                                provider="pb"),
                         bet(p1, cur, 50, t, game="gb", provider="pb"), win(p2, cur, 120, t, game="gb", provider="pb"))
    await analytics.row_until(TODAY, cur, "the bets", stakes=1_350, wins=120)
    r = await analytics.report(TODAY, TODAY, currency=cur, affiliate=str(affiliate))
    assert r["rows"] == []  # not attributed yet: nothing is the affiliate's
    await analytics.emit(registered(p1, "MT", cur, t), registered(p2, "DE", cur, t))
    await analytics.emit(PlayerAttributed(player_id=p1, affiliate_id=affiliate, click_id="c-1", link_id=uuid.uuid4(),
                                          country="MT", currency=cur, attributed_at=t))
    by_aff = await analytics.row_until(TODAY, cur, "the attribution", stakes=1_050,
                                       params={"affiliate": str(affiliate)})
    assert by_aff["registrations"] == 1 and by_aff["active_players"] == 1 and by_aff["ggr"] == 1_050
    mt = await analytics.row_until(TODAY, cur, "MT", stakes=1_050, params={"country": "MT"})
    assert mt["wins"] == 0 and mt["registrations"] == 1
    de = await analytics.row_until(TODAY, cur, "DE", stakes=300, params={"country": "DE"})
    assert de["wins"] == 120 and de["ggr"] == 180
    gb = await analytics.row_until(TODAY, cur, "game gb", stakes=350, params={"game": "gb"})
    assert gb["wins"] == 120 and gb["active_players"] == 2 and gb["registrations"] == 0
    pa = await analytics.row_until(TODAY, cur, "provider pa", stakes=1_000, params={"provider": "pa"})
    assert pa["active_players"] == 1
    both = await analytics.row_until(TODAY, cur, "game gb in DE", stakes=300, params={"game": "gb", "country": "DE"})
    assert both["wins"] == 120
    r = await analytics.report(TODAY, TODAY, currency=cur, country="FR")
    assert r["rows"] == []


async def test_logins_and_game_sessions_count_once_per_event_for_registered_players(analytics: Analytics) -> None:
    cur, t = "RON", at(TODAY, 14)
    p1, stranger = uuid.uuid4(), uuid.uuid4()
    started = SessionStarted(session_id=uuid.uuid4(), player_id=p1, game_id="g1", provider="rgs", currency=cur,
                             started_at=t, expires_at=t + timedelta(hours=1))
    sent = await analytics.emit(registered(p1, "MT", cur, t), LoggedIn(player_id=p1, at=t),
                                LoggedIn(player_id=p1, at=t + timedelta(minutes=5)), started,
                                LoggedIn(player_id=stranger, at=t))  # never registered: no currency to count in
    await analytics.emit(envs=[sent[1]], again=True)  # a login delivered twice
    await analytics.emit(LoggedIn(player_id=p1, at=t + timedelta(minutes=9)))  # read after the replay
    row = await analytics.row_until(TODAY, cur, "the activity", logins=3, game_sessions=1, registrations=1)
    assert row["active_players"] == 0 and row["stakes"] == 0  # a session is not a bet
    mt = await analytics.row_until(TODAY, cur, "MT", logins=3, params={"country": "MT"})
    assert mt["game_sessions"] == 1
    assert (await analytics.report(TODAY, TODAY, currency=cur, country="DE"))["rows"] == []


# ---- CSV and refusals ------------------------------------------------------------------------------------

async def test_csv_export_has_one_line_per_day_and_currency_with_the_json_figures(analytics: Analytics) -> None:
    cur = "PLN"
    pid = uuid.uuid4()
    await analytics.emit(bet(pid, cur, 2_000, at(YESTERDAY, 8)), win(pid, cur, 500, at(YESTERDAY, 8)),
                         bet(pid, cur, 400, at(TODAY, 8)), deposit(pid, cur, 9_000, at(TODAY, 7), first=True))
    await analytics.row_until(TODAY, cur, "today", stakes=400, deposits=9_000)
    await analytics.row_until(YESTERDAY, cur, "yesterday", stakes=2_000, wins=500)
    r = await kpis(analytics.app, analytics.http, YESTERDAY, TODAY, currency=cur, format="csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["day"], x["currency"]) for x in lines] == [(YESTERDAY.isoformat(), cur), (TODAY.isoformat(), cur)]
    y, t = lines
    # yesterday: GGR 2000 - 500 = 1500, duty 75, NGR 1425; today: GGR 400, duty 20, NGR 380
    assert (y["stakes"], y["wins"], y["ggr"], y["gaming_tax"], y["ngr"]) == ("2000", "500", "1500", "75", "1425")
    assert (t["stakes"], t["ggr"], t["gaming_tax"], t["ngr"], t["deposits"], t["ftd"]) == \
        ("400", "400", "20", "380", "9000", "1")
    assert t["conversion"] == ""  # no registration that day: no ratio, an empty cell


async def test_bad_requests_are_problems_never_server_errors(analytics: Analytics) -> None:
    app, http = analytics.app, analytics.http
    url = "/internal/analytics/kpis"
    ok = {"from": YESTERDAY.isoformat(), "to": TODAY.isoformat()}
    problem(await http.get(url, params={"from": TODAY.isoformat(), "to": YESTERDAY.isoformat()},
                           headers=as_staff(app, "finance")), 422, "invalid-period")
    problem(await http.get(url, params={"from": "2025-01-01", "to": "2026-02-01"}, headers=as_staff(app, "finance")),
            422, "invalid-period")
    for bad in ({"currency": "eur"}, {"country": "Malta"}, {"affiliate": "not-a-uuid"}, {"group": "week"},
                {"format": "xml"}, {"from": "yesterday"}):
        problem(await http.get(url, params={**ok, **bad}, headers=as_staff(app, "finance")), 422, "validation-error")
    problem(await http.get(url, params={"to": TODAY.isoformat()}, headers=as_staff(app, "finance")), 422,
            "validation-error")
    problem(await http.get(url, params=ok), 401, "unauthenticated")
    problem(await http.get(url, params=ok, headers=as_service(app, "backoffice")), 401, "staff-unauthenticated")
    problem(await http.get(url, params=ok, headers=as_staff(app, "risk")), 403, "staff-role-forbidden")
    problem(await http.get(url, params=ok, headers=as_staff(app, "finance", caller="gateway")), 403,
            "caller-not-allowed")
    for role in ("finance", "admin", "support"):
        r = await http.get(url, params=ok, headers=as_staff(app, role))  # type: ignore[arg-type]
        assert r.status_code == 200, (role, r.text)
    problem(await http.get("/internal/analytics/rtp", params=ok, headers=as_staff(app, "finance")), 422,
            "validation-error")  # the currency is required


async def test_rtp_needs_games_and_answers_a_problem_while_it_is_unreachable(analytics: Analytics) -> None:
    """This module runs analytics without games: the certified RTP cannot be read, a 503 problem
    names the dependency; the KPI route does not need games and keeps answering."""
    cur, t = "HUF", at(TODAY, 13)
    pid = uuid.uuid4()
    await analytics.emit(bet(pid, cur, 100, t, round_id="r-huf"), win(pid, cur, 90, t, round_id="r-huf"))
    await analytics.row_until(TODAY, cur, "the round", stakes=100, wins=90)
    r = await analytics.http.get("/internal/analytics/rtp", headers=as_staff(analytics.app, "finance"),
                                 params={"from": TODAY.isoformat(), "to": TODAY.isoformat(), "currency": cur})
    assert problem(r, 503, "dependency-unavailable")["dependency"] == "games"
    empty = await analytics.http.get("/internal/analytics/rtp", headers=as_staff(analytics.app, "finance"),
                                     params={"from": TODAY.isoformat(), "to": TODAY.isoformat(), "currency": "ISK"})
    assert empty.status_code == 200 and empty.json()["rows"] == []  # no rounds: nothing to ask games about
