"""Deal maths through the running service, against statements worked out by hand: wallet events
of referred players (published to JetStream as the wallet publishes them) become the month's
figures; CPA qualification edges, a revenue-share band boundary reached only thanks to the
carry-over, the gaming tax of the jurisdiction (mga, 5 %), a hybrid sub-affiliate and its
parent's override; closed months are final; the affiliate's own API shows no personal data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from affiliateslib import PROBLEM, Affiliates, Money, affiliates_app, eventually, utc
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gameplane.devtools.testing import as_service, as_staff, stored_events

BANDS = [{"from_ngr": 0, "basis_points": 2500}, {"from_ngr": 100_000, "basis_points": 3500}]


@pytest.fixture(scope="module")
async def aff(module_service_settings: Any, nats_server: Any) -> AsyncIterator[Affiliates]:
    async with affiliates_app(module_service_settings, nats_server.url, utc(2026, 10, 1, 9),
                              jurisdiction="mga") as a:
        yield a


async def _referred(aff: Affiliates, affiliate_id: str, registered: Any, ip: str) -> uuid.UUID:
    code = await aff.link(affiliate_id)
    click = await aff.click_id(code, ip=ip)
    player = await aff.register(click, registered)
    assert (await aff.attribution(player))["affiliate_id"] == affiliate_id
    return player


async def _statement_when(aff: Affiliates, affiliate_id: str, month: str, **expected: Any) -> dict[str, Any]:
    """The statement once the events behind it were consumed (it matches `expected`)."""
    async def ready() -> dict[str, Any] | None:
        st = await aff.statement(affiliate_id, month)
        return st if all(st[k] == v for k, v in expected.items()) else None
    try:
        return await eventually(ready, what=f"statement {month} with {expected}")  # type: ignore[no-any-return]
    except AssertionError:
        raise AssertionError(f"statement is {await aff.statement(affiliate_id, month)}") from None


async def test_carry_over_band_boundary_tax_hybrid_sub_and_override_over_two_months(aff: Affiliates) -> None:
    parent = await aff.create({"currency": "EUR", "revshare": BANDS})
    sub = await aff.create({"currency": "EUR", "cpa_amount": 5_000, "cpa_min_first_deposit": 1_000,
                            "cpa_min_stakes": 1_000, "revshare": [{"from_ngr": 0, "basis_points": 1500}]},
                           parent=parent["affiliate_id"], override_bp=1_000)
    p1 = await _referred(aff, parent["affiliate_id"], utc(2026, 10, 2), "192.0.2.1")
    m = Money(p1)
    # October: GGR 50 000 − 90 000 = −40 000 (no tax on a loss), NGR −40 000: nothing earned, all carried
    await aff.emit(m.deposit(100_000, utc(2026, 10, 2)), m.bet(50_000, utc(2026, 10, 3)),
                   m.win(90_000, utc(2026, 10, 3)))
    october = await _statement_when(aff, parent["affiliate_id"], "2026-10", stakes=50_000, wins=90_000)
    assert (october["ngr"], october["revshare"], october["carry_out"]) == (-40_000, 0, -40_000)

    aff.clock.advance(days=32)  # 2 November
    r = await aff.close("2026-10")
    assert r.status_code == 200, r.text
    assert (await aff.statement(parent["affiliate_id"], "2026-10"))["state"] == "closed"

    # November, parent's player: stakes 155 000 + 10 000 (bonus) + 10 000 − 10 000 (rolled back) = 165 000,
    # wins 5 000 → GGR 160 000; bonus cost 10 000 + 1 500 converted = 11 500; fees 500; tax 5 % × 160 000 = 8 000
    # → NGR 140 000; with −40 000 carried in: 100 000, exactly at the second band → 35 % = 35 000
    rolled = m.bet(10_000, utc(2026, 11, 6))
    await aff.emit(m.bet(155_000, utc(2026, 11, 5)), m.bet(10_000, utc(2026, 11, 5), bonus=10_000), rolled,
                   m.rollback(rolled, utc(2026, 11, 6, 13)), m.win(5_000, utc(2026, 11, 6, 14)),
                   m.converted(1_500, utc(2026, 11, 7)), m.fee(500, utc(2026, 11, 7)))
    # the sub's player: deposit 1 000 (exactly the minimum), stakes 40 000 → qualifies: CPA 5 000;
    # GGR 40 000, tax 2 000, NGR 38 000 × 15 % = 5 700; own commission 10 700; parent's override 10 % = 1 070
    q1 = await _referred(aff, sub["affiliate_id"], utc(2026, 11, 3), "192.0.2.2")
    q = Money(q1)
    await aff.emit(q.deposit(1_000, utc(2026, 11, 3)), q.bet(40_000, utc(2026, 11, 4)))

    sub_nov = await _statement_when(aff, sub["affiliate_id"], "2026-11", stakes=40_000, cpa_count=1)
    assert (sub_nov["ggr"], sub_nov["gaming_tax"], sub_nov["ngr"], sub_nov["band_bp"], sub_nov["revshare"],
            sub_nov["cpa"], sub_nov["own_commission"], sub_nov["commission"]) == (
        40_000, 2_000, 38_000, 1_500, 5_700, 5_000, 10_700, 10_700)
    nov = await _statement_when(aff, parent["affiliate_id"], "2026-11", stakes=165_000, wins=5_000, payment_fees=500,
                                bonus_cost=11_500, override=1_070)
    assert (nov["ggr"], nov["gaming_tax"], nov["ngr"], nov["carried_in"], nov["net_ngr"], nov["band_bp"],
            nov["revshare"], nov["own_commission"], nov["override"], nov["commission"], nov["carry_out"]) == (
        160_000, 8_000, 140_000, -40_000, 100_000, 3_500, 35_000, 35_000, 1_070, 36_070, 0)
    [line] = nov["lines"]
    assert (line["stakes"], line["wins"], line["ggr"], line["bonus_cost"], line["payment_fees"],
            line["ngr_before_tax"], line["cpa"]) == (165_000, 5_000, 160_000, 11_500, 500, 148_000, 0)
    assert str(p1) not in line["player_ref"]

    # the affiliate's own view: its players' aggregates, nothing that says who they are
    me = {**as_service(aff.app, "gateway"), "X-Api-Key": parent["api_key"]}
    players = await aff.http.get("/v1/affiliates/me/players", params={"month": "2026-11"}, headers=me)
    assert players.status_code == 200, players.text
    assert [(p["stakes"], p["ggr"], p["first_deposit"]) for p in players.json()] == [(165_000, 160_000, 100_000)]
    assert set(players.json()[0]) == {"player_ref", "registered_on", "country", "currency", "first_deposit",
                                      "qualified",
                                      "stakes", "ggr", "ngr_before_tax"}
    assert str(p1) not in players.text and "@mail.example" not in players.text and "1990" not in players.text
    own = await aff.http.get("/v1/affiliates/me/statements/2026-11", headers=me)
    assert own.json()["commission"] == 36_070
    wrong = await aff.http.get("/v1/affiliates/me/players", headers={**me, "X-Api-Key": "ak_wrong"})
    assert wrong.status_code == 401 and wrong.json()["type"] == PROBLEM + "api-key-invalid"

    # closing November makes it final: a late event of November changes nothing in it
    aff.clock.advance(days=29)  # 1 December
    assert (await aff.close("2026-11")).status_code == 200
    await aff.emit(m.bet(1_000, utc(2026, 11, 20)))

    async def late_seen() -> bool:
        r = await aff.http.get("/v1/affiliates/me/players", params={"month": "2026-11"}, headers=me)
        return bool(r.json()[0]["stakes"] == 166_000)
    await eventually(late_seen, what="the late bet in the player's figures")
    # a new deal applies to open months only: the closed statement keeps the one it was computed with
    r = await aff.http.put(f"/internal/affiliates/affiliates/{parent['affiliate_id']}/deal",
                           json={"currency": "EUR", "revshare": [{"from_ngr": 0, "basis_points": 5000}]},
                           headers=as_staff(aff.app, "finance"))
    assert r.status_code == 200, r.text
    closed = await aff.statement(parent["affiliate_id"], "2026-11")
    assert (closed["state"], closed["stakes"], closed["commission"]) == ("closed", 165_000, 36_070)
    assert ([t["basis_points"] for t in closed["deal"]["revshare"]], closed["tax_basis_points"]) == ([2500, 3500],
                                                                                                     500)
    async with aff.app.state.runtime.database.transaction() as s:
        with pytest.raises(DBAPIError, match="immutable"):
            await s.execute(text("UPDATE statements SET commission = 0"))
    closed_events = await stored_events(aff.nats_url, "gameplane.affiliates.statement_closed",
                                        {"affiliate_id": parent["affiliate_id"], "month": "2026-11"}, expect=1)
    assert [e["data"]["commission"] for e in closed_events] == [36_070]


async def test_cpa_qualification_edges(aff: Affiliates) -> None:
    cpa = await aff.create({"currency": "EUR", "cpa_amount": 10_000, "cpa_min_first_deposit": 2_000,
                            "cpa_min_stakes": 5_000, "cpa_stakes_days": 7})
    reg = utc(2026, 11, 1, 10)
    exact, low_deposit, late_stakes, no_deposit = [
        await _referred(aff, cpa["affiliate_id"], reg, f"192.0.2.{10 + i}") for i in range(4)]
    a, b, c, d = Money(exact), Money(low_deposit), Money(late_stakes), Money(no_deposit)
    await aff.emit(
        a.deposit(2_000, utc(2026, 11, 1, 11)), a.bet(5_000, utc(2026, 11, 7, 23, 59)),    # both at the minimum
        b.deposit(1_999, utc(2026, 11, 1, 11)), b.bet(9_000, utc(2026, 11, 2)),            # deposit 1 below
        c.deposit(2_000, utc(2026, 11, 1, 11)), c.bet(4_999, utc(2026, 11, 2)),            # stakes 1 below in the
        c.bet(1_000, utc(2026, 11, 8, 0, 0, 1)),                                           # 7 days; day 8 too late
        d.bet(10_000, utc(2026, 11, 2)))                                                   # never deposited
    st = await _statement_when(aff, cpa["affiliate_id"], "2026-11", stakes=5_000 + 9_000 + 5_999 + 10_000)
    assert (st["cpa_count"], st["cpa"], st["revshare"], st["commission"]) == (1, 10_000, 0, 10_000)
    assert sorted(line["cpa"] for line in st["lines"]) == [0, 0, 0, 10_000]
    states = {p: (await aff.attribution(p))["qualified_at"] for p in (exact, low_deposit, late_stakes, no_deposit)}
    # dated by the ledger: the later of the first deposit and the day the stakes reached the minimum
    assert states[exact] == "2026-11-07T00:00:00Z" and [states[p] for p in (low_deposit, late_stakes, no_deposit)] \
        == [None, None, None]
    events = await stored_events(aff.nats_url, "gameplane.affiliates.player_qualified",
                                 {"affiliate_id": cpa["affiliate_id"]}, expect=1)
    assert [e["data"]["player_id"] for e in events] == [str(exact)]


async def test_closing_refuses_an_open_month_a_closed_one_and_a_malformed_one(aff: Affiliates) -> None:
    this_month = f"{aff.clock.now.year:04d}-{aff.clock.now.month:02d}"
    r = await aff.close(this_month)
    assert r.status_code == 409 and r.json()["type"] == PROBLEM + "month-not-over"
    r = await aff.close("2026-13")
    assert r.status_code == 422 and r.json()["type"] == PROBLEM + "invalid-month"
    r = await aff.close("2026-10")
    assert r.status_code == 409 and r.json()["type"] == PROBLEM + "month-closed"
    # October and November are closed (the first test): September would come out of order, and so
    # would January before December
    r = await aff.close("2026-09")
    assert r.status_code == 409 and r.json()["type"] == PROBLEM + "months-in-order"
    aff.clock.advance(days=62)  # February 2027
    r = await aff.close("2027-01")
    assert r.status_code == 409 and r.json()["type"] == PROBLEM + "months-in-order"
    assert (await aff.close("2026-12")).status_code == 200


async def test_bad_deals_and_parents_are_422_problems(aff: Affiliates) -> None:
    bad = await aff.create({"currency": "EUR", "revshare": [{"from_ngr": 5, "basis_points": 2500}]}, expect=422)
    assert bad["type"] == PROBLEM + "validation-error"
    top = await aff.create({"currency": "EUR", "revshare": BANDS})
    child = await aff.create({"currency": "EUR"}, parent=top["affiliate_id"])
    grandchild = await aff.create({"currency": "EUR"}, parent=child["affiliate_id"], expect=422)
    assert grandchild["type"] == PROBLEM + "invalid-parent"
    orphan_override = await aff.create({"currency": "EUR"}, override_bp=500, expect=422)
    assert orphan_override["type"] == PROBLEM + "validation-error"
