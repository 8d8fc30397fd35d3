"""Offers at the bonus service: the jurisdiction profile refuses terms it does not allow at
creation (ukgc: wagering above 10x), versions are immutable, and publishing names the version
grants are made from. Bonus runs here without NATS: these are API and database rules only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gameplane.bonus.app import build_app
from gameplane.bonus.settings import BonusSettings
from gameplane.devtools.testing import as_staff, running

OFFER = {"name": "welcome 35x", "kind": "deposit_match", "currency": "GBP", "match_pct": 100, "max_bonus": 10_000,
         "wagering_multiplier": 35}


async def create(client: Any, app: Any, terms: dict[str, Any]) -> Any:
    staff = as_staff(app, "finance")
    campaign = (await client.post("/internal/bonus/campaigns", json={"name": "launch"}, headers=staff)).json()
    return await client.post(f"/internal/bonus/campaigns/{campaign['campaign_id']}/offers", json=terms, headers=staff)


@pytest.mark.parametrize(("jurisdiction", "multiplier", "status"), [
    ("ukgc", 35, 422), ("mga", 35, 201), ("ukgc", 10, 201), ("none", 35, 201)])
async def test_the_jurisdiction_decides_at_creation(service_settings: Any, jurisdiction: str, multiplier: int,
                                                    status: int) -> None:
    app = build_app(service_settings(BonusSettings, nats_url=None, jurisdiction=jurisdiction))
    async with running(app) as client:
        r = await create(client, app, {**OFFER, "wagering_multiplier": multiplier})
        assert r.status_code == status, r.text
        if status == 422:
            problem = r.json()
            assert r.headers["content-type"].startswith("application/problem+json")
            assert problem["type"].endswith("/offer-breaks-jurisdiction")
            assert (problem["jurisdiction"], problem["limit"], problem["value"]) == ("ukgc", 10, 35)
            offers = await client.get("/internal/bonus/offers", headers=as_staff(app, "support"))
            assert offers.json() == []  # nothing was stored


async def test_a_new_version_under_ukgc_is_checked_too(service_settings: Any) -> None:
    app = build_app(service_settings(BonusSettings, nats_url=None, jurisdiction="ukgc"))
    async with running(app) as client:
        staff = as_staff(app, "finance")
        offer = (await create(client, app, {**OFFER, "wagering_multiplier": 10})).json()
        r = await client.post(f"/internal/bonus/offers/{offer['offer_id']}/versions", headers=staff, json=OFFER)
        assert r.status_code == 422 and r.json()["type"].endswith("/offer-breaks-jurisdiction")
        r = await client.post(f"/internal/bonus/offers/{offer['offer_id']}/versions", headers=staff,
                              json={**OFFER, "wagering_multiplier": 8})
        assert r.status_code == 201 and r.json()["version"] == 2


async def test_versions_are_immutable_and_publishing_chooses_one(service_settings: Any) -> None:
    app = build_app(service_settings(BonusSettings, nats_url=None, jurisdiction="mga"))
    async with running(app) as client:
        staff = as_staff(app, "finance")
        offer = (await create(client, app, OFFER)).json()
        oid = offer["offer_id"]
        assert (offer["state"], offer["version"], offer["live_version"]) == ("draft", 1, None)
        v2 = await client.post(f"/internal/bonus/offers/{oid}/versions", headers=staff,
                               json={**OFFER, "max_bonus": 20_000})
        assert v2.status_code == 201
        live = await client.post(f"/internal/bonus/offers/{oid}/publish", headers=staff, json={"version": 1})
        assert (live.json()["state"], live.json()["live_version"], live.json()["terms"]["max_bonus"]) == \
            ("live", 1, 10_000)
        live = await client.post(f"/internal/bonus/offers/{oid}/publish", headers=staff, json={"version": 2})
        assert live.json()["terms"]["max_bonus"] == 20_000
        v1 = await client.get(f"/internal/bonus/offers/{oid}", params={"version": 1}, headers=staff)
        assert v1.json()["terms"]["max_bonus"] == 10_000  # the old version is still what it was
        missing = await client.post(f"/internal/bonus/offers/{oid}/publish", headers=staff, json={"version": 9})
        assert missing.status_code == 404 and missing.json()["type"].endswith("/offer-not-found")
        other_kind = await client.post(f"/internal/bonus/offers/{oid}/versions", headers=staff,
                                       json={"name": "x", "kind": "no_deposit", "currency": "GBP", "amount": 5})
        assert other_kind.status_code == 404
        # not even a statement straight at the database changes a version
        async with app.state.runtime.database.session() as s:
            with pytest.raises(DBAPIError, match="immutable"):
                await s.execute(text("UPDATE offer_versions SET terms = '{}' WHERE offer_id = :o"), {"o": oid})
        async with app.state.runtime.database.session() as s:
            with pytest.raises(DBAPIError, match="immutable"):
                await s.execute(text("DELETE FROM offer_versions WHERE offer_id = :o"), {"o": oid})
        audit = await client.get("/internal/bonus/audit", params={"target": f"offer:{oid}"}, headers=staff)
        assert [r["action"] for r in audit.json()["records"]] == [
            "bonus.offer_published", "bonus.offer_published", "bonus.offer_version_created",
            "bonus.offer_version_created"]


async def test_bad_terms_are_422_problems(service_settings: Any) -> None:
    app = build_app(service_settings(BonusSettings, nats_url=None))
    async with running(app) as client:
        for bad in ({**OFFER, "match_pct": None}, {**OFFER, "wagering_multiplier": -1},
                    {**OFFER, "contributions": {"table": 101}}, {**OFFER, "currency": "eur"},
                    {**OFFER, "max_bonus": 2**70}, {**OFFER, "surprise": 1}):
            r = await create(client, app, bad)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["type"].endswith("/validation-error")
