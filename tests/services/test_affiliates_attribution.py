"""Clicks and attribution on real PostgreSQL and NATS: the click endpoint redirects with a click
id and flags bots and duplicates; a registration (players.registered with the click id) is
attributed to its click within 30 days, never to a flagged, unknown or older click, and the
attribution is published for analytics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from affiliateslib import BROWSER, PROBLEM, Affiliates, affiliates_app, utc

from gameplane.devtools.testing import as_service, as_staff, stored_events

REVSHARE = {"currency": "EUR", "revshare": [{"from_ngr": 0, "basis_points": 2500}]}


@pytest.fixture(scope="module")
async def aff(module_service_settings: Any, nats_server: Any) -> AsyncIterator[Affiliates]:
    async with affiliates_app(module_service_settings, nats_server.url, utc(2026, 10, 1)) as a:
        yield a


async def test_a_click_redirects_to_the_landing_page_with_a_click_id_and_keeps_its_query(aff: Affiliates) -> None:
    a = await aff.create(REVSHARE)
    code = await aff.link(a["affiliate_id"], "https://casino.example/welcome?lang=en&click_id=forged")
    r = await aff.click(code, sub1="campaign-7", sub3="banner")
    assert r.status_code == 302
    url = httpx.URL(r.headers["location"])
    assert (url.host, url.path, url.params["lang"]) == ("casino.example", "/welcome", "en")
    assert len(url.params.get_list("click_id")) == 1 and url.params["click_id"] != "forged"
    assert r.headers["cache-control"] == "no-store"


async def test_a_registration_is_attributed_to_its_click_and_published_with_the_sub_ids(aff: Affiliates) -> None:
    a = await aff.create(REVSHARE)
    code = await aff.link(a["affiliate_id"])
    click = await aff.click_id(code, sub1="campaign-7", sub3="banner", ua=BROWSER + " attrib")
    player = await aff.register(click, aff.clock.now + timedelta(hours=2))
    got = await aff.attribution(player)
    assert (got["affiliate_id"], got["click_id"], got["reason"]) == (a["affiliate_id"], click, None)
    events = await stored_events(aff.nats_url, "gameplane.affiliates.player_attributed",
                                 {"player_id": str(player)}, expect=1)
    assert len(events) == 1
    assert (events[0]["data"]["affiliate_id"], events[0]["data"]["sub_ids"]) == (a["affiliate_id"],
                                                                                ["campaign-7", "", "banner"])


@pytest.mark.parametrize("ua", ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                                "curl/8.4.0", "python-requests/2.31", None])
async def test_a_bot_click_is_recorded_but_never_attributed(aff: Affiliates, ua: str | None) -> None:
    a = await aff.create(REVSHARE)
    code = await aff.link(a["affiliate_id"])
    bot = await aff.click_id(code, ua=ua, ip="198.51.100.20")
    person = await aff.click_id(code, ua=BROWSER, ip="198.51.100.21")  # negative control: a person, same link
    at = aff.clock.now + timedelta(minutes=5)
    by_bot, by_person = await aff.register(bot, at), await aff.register(person, at)
    assert (await aff.attribution(by_bot))["reason"] == "flagged-click"
    assert (await aff.attribution(by_bot))["affiliate_id"] is None
    assert (await aff.attribution(by_person))["affiliate_id"] == a["affiliate_id"]
    links = (await aff.http.get(f"/internal/affiliates/affiliates/{a['affiliate_id']}/links",
                                headers=_staff(aff))).json()
    assert (links[0]["clicks"], links[0]["flagged_clicks"]) == (1, 1)


async def test_a_duplicate_click_within_the_window_is_flagged_and_after_it_counts_again(aff: Affiliates) -> None:
    a = await aff.create(REVSHARE)
    code = await aff.link(a["affiliate_id"])
    first = await aff.click_id(code, ip="192.0.2.44")
    aff.clock.advance(seconds=3_599)
    again = await aff.click_id(code, ip="192.0.2.44")
    other_ip = await aff.click_id(code, ip="192.0.2.45")  # another visitor is not a duplicate
    aff.clock.advance(seconds=3_601)
    later = await aff.click_id(code, ip="192.0.2.44")  # more than an hour after the last one
    at = aff.clock.now
    reasons = [(await aff.attribution(await aff.register(c, at)))["reason"] for c in (first, again, other_ip, later)]
    assert reasons == [None, "flagged-click", None, None]


async def test_attribution_window_is_thirty_days_inclusive(aff: Affiliates) -> None:
    a = await aff.create(REVSHARE)
    code = await aff.link(a["affiliate_id"])
    clicked_at = aff.clock.now
    c1 = await aff.click_id(code, ip="192.0.2.60")
    c2 = await aff.click_id(code, ip="192.0.2.61")
    on_the_day = await aff.register(c1, clicked_at + timedelta(days=30))
    a_second_late = await aff.register(c2, clicked_at + timedelta(days=30, seconds=1))
    assert (await aff.attribution(on_the_day))["affiliate_id"] == a["affiliate_id"]
    late = await aff.attribution(a_second_late)
    assert (late["affiliate_id"], late["reason"]) == (None, "expired-click")


async def test_unknown_and_missing_click_ids_are_recorded_unattributed_with_the_reason(aff: Affiliates) -> None:
    unknown = await aff.register("0" * 32, aff.clock.now)
    organic = await aff.register(None, aff.clock.now)
    assert (await aff.attribution(unknown))["reason"] == "unknown-click"
    assert (await aff.attribution(organic))["reason"] == "no-click"
    events = await stored_events(aff.nats_url, "gameplane.affiliates.player_attributed",
                                 {"player_id": str(unknown)}, expect=0, timeout=2.0)
    assert events == []


async def test_an_unknown_link_is_a_404_problem(aff: Affiliates) -> None:
    r = await aff.click("no-such-link")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == PROBLEM + "link-not-found"


async def test_the_click_endpoint_takes_only_the_gateway(aff: Affiliates) -> None:
    r = await aff.http.get("/v1/affiliates/track/anything", headers=as_service(aff.app, "wallet"))
    assert r.status_code == 403 and r.json()["type"] == PROBLEM + "caller-not-allowed"
    assert (await aff.http.get("/v1/affiliates/track/anything")).status_code == 401


def _staff(aff: Affiliates) -> dict[str, str]:
    return as_staff(aff.app, "support")


async def test_a_deactivated_affiliate_gets_no_new_players_and_its_api_key_stops_working(aff: Affiliates) -> None:
    a = await aff.create(REVSHARE)
    code = await aff.link(a["affiliate_id"])
    before, after = await aff.click_id(code, ip="192.0.2.80"), await aff.click_id(code, ip="192.0.2.81")
    kept = await aff.register(before, aff.clock.now)
    assert (await aff.attribution(kept))["affiliate_id"] == a["affiliate_id"]
    key = {**as_service(aff.app, "gateway"), "X-Api-Key": a["api_key"]}
    assert (await aff.http.get("/v1/affiliates/me", headers=key)).status_code == 200
    r = await aff.http.put(f"/internal/affiliates/affiliates/{a['affiliate_id']}/active",
                           json={"active": False, "reason": "fraudulent traffic"},
                           headers=as_staff(aff.app, "finance"))
    assert r.status_code == 200 and r.json()["active"] is False
    refused = await aff.register(after, aff.clock.now)
    assert (await aff.attribution(refused))["reason"] == "affiliate-inactive"
    denied = await aff.http.get("/v1/affiliates/me", headers=key)
    assert denied.status_code == 401 and denied.json()["type"] == PROBLEM + "api-key-invalid"
    assert (await aff.attribution(kept))["affiliate_id"] == a["affiliate_id"]  # earlier players stay
    trail = (await aff.http.get("/internal/affiliates/audit", headers=as_staff(aff.app, "admin"))).json()
    assert any(e["action"] == "affiliates.deactivated" and e["after"]["reason"] == "fraudulent traffic"
               for e in trail["records"])
