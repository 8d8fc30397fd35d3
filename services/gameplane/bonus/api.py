"""Routes of the bonus service.

player       /v1/bonus/offers, /offers/{id}/opt-in, /grants, /grants/{id}/forfeit
             (service token: gateway, which vouches for the player)
back office  /internal/bonus/campaigns..., /offers..., /grants..., /players/{id}/segments,
             /reports/liability, /audit (service token: backoffice, plus a staff token: reads
             support/finance/admin, writes finance/admin; every write audited)
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.bonus import grants, rules, worker
from gameplane.bonus.settings import BonusSettings
from gameplane.contracts import bonus as c
from gameplane.kit import audit
from gameplane.kit.app import Runtime
from gameplane.kit.audit import Actor, target_of
from gameplane.kit.auth import PlayerContext, callers, player_context
from gameplane.kit.outbox import publish
from gameplane.kit.problems import responses as refusals
from gameplane.kit.staff import StaffContext, staff

public = APIRouter(prefix=c.PREFIX, tags=["player"])
backoffice = APIRouter(prefix=c.INTERNAL_PREFIX, tags=["back office"], dependencies=[Depends(callers("backoffice"))])
READERS = staff("support", "finance", "admin")
WRITERS = staff("finance", "admin")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _settings(request: Request) -> BonusSettings:
    return _rt(request).settings  # type: ignore[return-value]


# ---- offers ---------------------------------------------------------------------------------------

async def _offer_view(s: AsyncSession, offer_id: uuid.UUID) -> c.OfferView:
    row = (await s.execute(text("SELECT offer_id, campaign_id, state, live_version, versions FROM offers "
                                "WHERE offer_id = :o"), {"o": offer_id})).one_or_none()
    if row is None:
        raise c.OFFER_NOT_FOUND(f"no offer {offer_id}")
    shown = int(row.live_version or row.versions)
    return c.OfferView(offer_id=row.offer_id, campaign_id=row.campaign_id, state=row.state,
                       live_version=row.live_version, version=shown, versions=row.versions,
                       terms=await grants.terms_of(s, offer_id, shown))


async def _add_version(s: AsyncSession, offer_id: uuid.UUID, version: int, terms: c.OfferTerms, who: StaffContext,
                       now: datetime) -> None:
    await s.execute(text("INSERT INTO offer_versions (offer_id, version, terms, created_at, created_by) "
                         "VALUES (:o, :v, CAST(:t AS jsonb), :now, :by)"),
                    {"o": offer_id, "v": version, "t": terms.model_dump_json(), "now": now, "by": who.actor})
    await audit.record(s, Actor.of(who), "bonus.offer_version_created", target_of("offer", offer_id), None,
                       {"version": version, "terms": terms.model_dump(mode="json")}, at=now)


# ---- back office ----------------------------------------------------------------------------------

@backoffice.post("/campaigns", status_code=201, response_model=c.CampaignView)
async def create_campaign(body: c.CampaignCreate, request: Request,
                          who: StaffContext = Depends(WRITERS)) -> c.CampaignView:
    rt = _rt(request)
    now = worker.now_of(rt)
    view = c.CampaignView(**body.model_dump(), campaign_id=uuid.uuid4(), created_at=now, created_by=who.actor)
    async with rt.database.transaction() as s:
        await s.execute(text("INSERT INTO campaigns (campaign_id, name, starts_at, ends_at, created_at, created_by) "
                             "VALUES (:id, :n, :s, :e, :now, :by)"),
                        {"id": view.campaign_id, "n": body.name, "s": body.starts_at, "e": body.ends_at, "now": now,
                         "by": who.actor})
        await audit.record(s, Actor.of(who), "bonus.campaign_created", target_of("campaign", view.campaign_id), None,
                           body.model_dump(mode="json"), at=now)
    return view


@backoffice.get("/campaigns", response_model=list[c.CampaignView])
async def list_campaigns(request: Request, _who: StaffContext = Depends(READERS)) -> list[c.CampaignView]:
    async with _rt(request).database.session() as s:
        rows = (await s.execute(text("SELECT * FROM campaigns ORDER BY created_at DESC LIMIT 500"))).mappings().all()
    return [c.CampaignView.model_validate(dict(r)) for r in rows]


@backoffice.post("/campaigns/{campaign_id}/offers", status_code=201, response_model=c.OfferView,
                 responses=refusals(c.CAMPAIGN_NOT_FOUND, c.OFFER_BREAKS_JURISDICTION))
async def create_offer(campaign_id: uuid.UUID, body: c.OfferTerms, request: Request,
                       who: StaffContext = Depends(WRITERS)) -> c.OfferView:
    """A new offer (a draft at version 1). Terms the active jurisdiction does not allow are refused
    (422 offer-breaks-jurisdiction)."""
    rules.check_jurisdiction(body, _settings(request).profile)
    rt = _rt(request)
    now = worker.now_of(rt)
    offer_id = uuid.uuid4()
    async with rt.database.transaction() as s:
        if (await s.execute(text("SELECT 1 FROM campaigns WHERE campaign_id = :c"),
                            {"c": campaign_id})).first() is None:
            raise c.CAMPAIGN_NOT_FOUND(f"no campaign {campaign_id}")
        await s.execute(text("INSERT INTO offers (offer_id, campaign_id, kind, currency, state, live_version, "
                             "versions, created_at) VALUES (:o, :c, :k, :cur, 'draft', NULL, 1, :now)"),
                        {"o": offer_id, "c": campaign_id, "k": body.kind, "cur": body.currency, "now": now})
        await _add_version(s, offer_id, 1, body, who, now)
        return await _offer_view(s, offer_id)


@backoffice.post("/offers/{offer_id}/versions", status_code=201, response_model=c.OfferView,
                 responses=refusals(c.OFFER_NOT_FOUND, c.OFFER_BREAKS_JURISDICTION))
async def new_version(offer_id: uuid.UUID, body: c.OfferTerms, request: Request,
                      who: StaffContext = Depends(WRITERS)) -> c.OfferView:
    """Changed terms are a new version (versions never change); it goes live when published. The
    kind and currency of an offer stay what they were."""
    rules.check_jurisdiction(body, _settings(request).profile)
    rt = _rt(request)
    now = worker.now_of(rt)
    async with rt.database.transaction() as s:
        row = (await s.execute(text("SELECT kind, currency, versions FROM offers WHERE offer_id = :o FOR UPDATE"),
                               {"o": offer_id})).one_or_none()
        if row is None:
            raise c.OFFER_NOT_FOUND(f"no offer {offer_id}")
        if (row.kind, row.currency) != (body.kind, body.currency):
            raise c.OFFER_NOT_FOUND(f"offer {offer_id} is a {row.kind} offer in {row.currency}: make a new offer")
        version = int(row.versions) + 1
        await s.execute(text("UPDATE offers SET versions = :v WHERE offer_id = :o"), {"v": version, "o": offer_id})
        await _add_version(s, offer_id, version, body, who, now)
        view = await _offer_view(s, offer_id)
    return view.model_copy(update={"version": version, "terms": body})


@backoffice.post("/offers/{offer_id}/publish", response_model=c.OfferView,
                 responses=refusals(c.OFFER_NOT_FOUND, c.OFFER_BREAKS_JURISDICTION))
async def publish_offer(offer_id: uuid.UUID, body: c.PublishRequest, request: Request,
                        who: StaffContext = Depends(WRITERS)) -> c.OfferView:
    """Put a version live (grants from now on are made from it; earlier grants keep theirs). Its
    terms are checked against the jurisdiction again: the profile may have changed since."""
    rt = _rt(request)
    now = worker.now_of(rt)
    async with rt.database.transaction() as s:
        row = (await s.execute(text("SELECT campaign_id, state, live_version FROM offers WHERE offer_id = :o "
                                    "FOR UPDATE"), {"o": offer_id})).one_or_none()
        if row is None:
            raise c.OFFER_NOT_FOUND(f"no offer {offer_id}")
        terms = await grants.terms_of(s, offer_id, body.version)
        rules.check_jurisdiction(terms, _settings(request).profile)
        await s.execute(text("UPDATE offers SET state = 'live', live_version = :v WHERE offer_id = :o"),
                        {"v": body.version, "o": offer_id})
        await publish(s, c.OfferPublished(offer_id=offer_id, campaign_id=row.campaign_id, version=body.version,
                                          terms=terms, published_by=who.actor), producer=grants.PRODUCER)
        await audit.record(s, Actor.of(who), "bonus.offer_published", target_of("offer", offer_id),
                           {"state": row.state, "live_version": row.live_version},
                           {"state": "live", "live_version": body.version}, at=now)
        return await _offer_view(s, offer_id)


@backoffice.post("/offers/{offer_id}/retire", response_model=c.OfferView, responses=refusals(c.OFFER_NOT_FOUND))
async def retire_offer(offer_id: uuid.UUID, request: Request, who: StaffContext = Depends(WRITERS)) -> c.OfferView:
    """No new grants from this offer; open grants run on."""
    rt = _rt(request)
    now = worker.now_of(rt)
    async with rt.database.transaction() as s:
        row = (await s.execute(text("SELECT state FROM offers WHERE offer_id = :o FOR UPDATE"),
                               {"o": offer_id})).one_or_none()
        if row is None:
            raise c.OFFER_NOT_FOUND(f"no offer {offer_id}")
        await s.execute(text("UPDATE offers SET state = 'retired' WHERE offer_id = :o"), {"o": offer_id})
        await audit.record(s, Actor.of(who), "bonus.offer_retired", target_of("offer", offer_id),
                           {"state": row.state}, {"state": "retired"}, at=now)
        return await _offer_view(s, offer_id)


@backoffice.get("/offers", response_model=list[c.OfferView])
async def list_offers(request: Request, _who: StaffContext = Depends(READERS),
                      campaign_id: uuid.UUID | None = None) -> list[c.OfferView]:
    async with _rt(request).database.session() as s:
        ids = (await s.execute(text("SELECT offer_id FROM offers WHERE CAST(:c AS uuid) IS NULL OR campaign_id = :c "
                                    "ORDER BY created_at DESC LIMIT 500"), {"c": campaign_id})).scalars().all()
        return [await _offer_view(s, o) for o in ids]


@backoffice.get("/offers/{offer_id}", response_model=c.OfferView, responses=refusals(c.OFFER_NOT_FOUND))
async def get_offer(offer_id: uuid.UUID, request: Request, _who: StaffContext = Depends(READERS),
                    version: int | None = Query(None, ge=1, le=2**31 - 1)) -> c.OfferView:
    async with _rt(request).database.session() as s:
        view = await _offer_view(s, offer_id)
        if version is not None and version != view.version:
            view = view.model_copy(update={"version": version, "terms": await grants.terms_of(s, offer_id, version)})
    return view


@backoffice.get("/grants", response_model=list[c.GrantView])
async def list_grants(request: Request, player_id: uuid.UUID, _who: StaffContext = Depends(READERS),
                      state: c.GrantState | None = None) -> list[c.GrantView]:
    async with _rt(request).database.session() as s:
        return [grants.view(r) for r in await grants.of_player(s, player_id, state)]


@backoffice.get("/grants/{grant_id}", response_model=c.GrantView, responses=refusals(c.BONUS_GRANT_NOT_FOUND))
async def get_grant(grant_id: uuid.UUID, request: Request, _who: StaffContext = Depends(READERS)) -> c.GrantView:
    async with _rt(request).database.session() as s:
        row = await grants.get(s, grant_id)
    if row is None:
        raise c.BONUS_GRANT_NOT_FOUND(f"no grant {grant_id}")
    return grants.view(row)


@backoffice.post("/grants", status_code=201, response_model=c.GrantView,
                 responses=refusals(c.OFFER_NOT_FOUND, c.OFFER_NOT_LIVE, c.NOT_ELIGIBLE, c.PLAYER_PROTECTED))
async def manual_grant(body: c.ManualGrantRequest, request: Request,
                       who: StaffContext = Depends(WRITERS)) -> c.GrantView:
    """Grant a live offer to a player by hand, with a reason (audited). Eligibility applies, except
    the opt-in and first-deposit rules; a self-excluded or timed-out player is always refused."""
    rt = _rt(request)
    now = worker.now_of(rt)
    async with rt.database.transaction() as s:
        version, terms = await grants.live_offer(s, body.offer_id)
        amount = _grant_amount(terms, body.amount)
        row = await _grant(s, body.player_id, body.offer_id, version, terms, amount, "manual", now)
        await audit.record(s, Actor.of(who), "bonus.manual_grant", target_of("player", body.player_id), None,
                           {"grant_id": row["grant_id"], "offer_id": body.offer_id, "version": version,
                            "amount": amount, "reason": body.reason}, at=now)
    return grants.view(await worker.settle(rt, row["grant_id"], wait=True) or row)


@backoffice.post("/grants/{grant_id}/cancel", response_model=c.GrantView,
                 responses=refusals(c.BONUS_GRANT_NOT_FOUND, c.BONUS_GRANT_CLOSED))
async def cancel_grant(grant_id: uuid.UUID, body: c.CancelRequest, request: Request,
                       who: StaffContext = Depends(WRITERS)) -> c.GrantView:
    """Cancel an open grant with a reason: what is left of its money goes back (audited)."""
    rt = _rt(request)
    now = worker.now_of(rt)
    async with rt.database.transaction() as s:
        row = await _open_grant(s, grant_id)
        after = await grants.close(s, row, "cancelled", body.reason, now, actor=who.actor)
        await audit.record(s, Actor.of(who), "bonus.grant_cancelled", target_of("grant", grant_id),
                           {"state": row["state"]}, {"state": "cancelled", "reason": body.reason}, at=now)
    return grants.view(await worker.settle(rt, grant_id, wait=True) or after)


@backoffice.put("/players/{player_id}/segments", response_model=c.SegmentsRequest)
async def set_segments(player_id: uuid.UUID, body: c.SegmentsRequest, request: Request,
                       who: StaffContext = Depends(WRITERS)) -> c.SegmentsRequest:
    rt = _rt(request)
    now = worker.now_of(rt)
    async with rt.database.transaction() as s:
        before = (await s.execute(text("SELECT segments FROM players WHERE player_id = :p FOR UPDATE"),
                                  {"p": player_id})).scalar_one_or_none()
        await s.execute(text("INSERT INTO players (player_id, segments) VALUES (:p, :seg) ON CONFLICT (player_id) "
                             "DO UPDATE SET segments = EXCLUDED.segments"), {"p": player_id, "seg": body.segments})
        await audit.record(s, Actor.of(who), "bonus.segments_set", target_of("player", player_id),
                           {"segments": list(before or [])}, {"segments": body.segments}, at=now)
    return body


@backoffice.get("/reports/liability", response_model=c.LiabilityReport)
async def liability(request: Request, _who: StaffContext = Depends(READERS)) -> c.LiabilityReport:
    """Per currency: open grants and the bonus money granted to them, everything granted,
    conversions (count, cash) and the grants closed without conversion."""
    rt = _rt(request)
    async with rt.database.session() as s:
        rows = (await s.execute(text(
            "SELECT currency, "
            "count(*) FILTER (WHERE state IN ('issued', 'active', 'wagering', 'completed')) AS open_grants, "
            "COALESCE(sum(amount) FILTER (WHERE state IN ('issued', 'active', 'wagering', 'completed')), 0) "
            "AS open_granted, COALESCE(sum(amount), 0) AS granted, "
            "count(*) FILTER (WHERE state = 'converted') AS converted_grants, "
            "COALESCE(sum(converted) FILTER (WHERE state = 'converted'), 0) AS converted, "
            "count(*) FILTER (WHERE state IN ('expired', 'cancelled', 'forfeited')) AS forfeited_grants "
            "FROM grants GROUP BY currency ORDER BY currency"))).mappings().all()
    return c.LiabilityReport(at=worker.now_of(rt), currencies=[c.CurrencyLiability(**r) for r in rows])


# ---- shared by player and back office -------------------------------------------------------------

def _grant_amount(terms: c.OfferTerms, asked: int | None) -> int:
    if terms.kind == "no_deposit":
        return int(terms.amount or 0)
    if terms.kind == "free_spins":
        return 0  # the wins of the spins are the bonus money
    amount = asked or 0
    if terms.max_bonus is not None:
        amount = min(amount, terms.max_bonus)
    if amount <= 0:
        raise c.NOT_ELIGIBLE(f"a {terms.kind} grant by hand needs an amount", reason="amount")
    return amount


async def _grant(s: AsyncSession, player_id: uuid.UUID, offer_id: uuid.UUID, version: int, terms: c.OfferTerms,
                 amount: int, source: str, now: datetime) -> dict[str, Any]:
    f = await grants.facts(s, player_id, offer_id)
    protected = rules.protection_refusal(f, now)
    if protected is not None:
        raise c.PLAYER_PROTECTED(f"the player is {protected}", reason=protected)
    why = rules.ineligible(terms, f, now)
    if why is not None:
        raise c.NOT_ELIGIBLE(f"not eligible: {why}", reason=why)
    row = await grants.create(s, player_id=player_id, offer_id=offer_id, version=version, terms=terms, amount=amount,
                              deposit=0, source=source, now=now)
    if row is None:
        raise c.NOT_ELIGIBLE("not eligible: already-granted", reason="already-granted")
    return row


async def _open_grant(s: AsyncSession, grant_id: uuid.UUID, player_id: uuid.UUID | None = None) -> dict[str, Any]:
    row = await grants.lock(s, grant_id)
    if row is None or (player_id is not None and row["player_id"] != player_id):
        raise c.BONUS_GRANT_NOT_FOUND(f"no grant {grant_id}")
    if row["state"] not in ("issued", "active", "wagering"):
        raise c.BONUS_GRANT_CLOSED(f"the grant is {row['state']}", state=row["state"])
    return row


# ---- player ---------------------------------------------------------------------------------------

@public.get("/offers", response_model=list[c.OfferView])
async def my_offers(request: Request, who: PlayerContext = Depends(player_context)) -> list[c.OfferView]:
    """Live offers this player may take now (eligibility checked; one per player per offer)."""
    rt = _rt(request)
    now = worker.now_of(rt)
    out = []
    async with rt.database.session() as s:
        ids = (await s.execute(text("SELECT offer_id FROM offers WHERE state = 'live' ORDER BY created_at"))
               ).scalars().all()
        for offer_id in ids:
            view = await _offer_view(s, offer_id)
            if rules.ineligible(view.terms, await grants.facts(s, who.player_id, offer_id), now) is None:
                out.append(view)
    return out


@public.post("/offers/{offer_id}/opt-in", status_code=201, response_model=c.OptInView,
             responses=refusals(c.OFFER_NOT_FOUND, c.OFFER_NOT_LIVE, c.NOT_ELIGIBLE, c.PLAYER_PROTECTED,
                                c.ALREADY_OPTED_IN))
async def opt_in(offer_id: uuid.UUID, request: Request, who: PlayerContext = Depends(player_context)) -> c.OptInView:
    """Take an offer: no-deposit and free-spin offers are granted now, a deposit match at the next
    qualifying deposit, a cashback pays at the end of its period."""
    rt = _rt(request)
    now = worker.now_of(rt)
    async with rt.database.transaction() as s:
        version, terms = await grants.live_offer(s, offer_id)
        f = await grants.facts(s, who.player_id, offer_id)
        protected = rules.protection_refusal(f, now)
        if protected is not None:
            raise c.PLAYER_PROTECTED(f"the player is {protected}", reason=protected)
        why = rules.ineligible(terms, f, now)
        if why is not None:
            raise c.NOT_ELIGIBLE(f"not eligible: {why}", reason=why)
        ends = now + timedelta(days=terms.period_days) if terms.kind == "cashback" else None
        inserted = (await s.execute(text(
            "INSERT INTO opt_ins (player_id, offer_id, currency, kind, opted_in_at, period_ends_at, settled) "
            "VALUES (:p, :o, :c, :k, :now, :ends, :settled) ON CONFLICT DO NOTHING RETURNING player_id"),
            {"p": who.player_id, "o": offer_id, "c": terms.currency, "k": terms.kind, "now": now, "ends": ends,
             "settled": terms.kind in ("no_deposit", "free_spins")})).first()
        if inserted is None:
            raise c.ALREADY_OPTED_IN(f"opted in to {offer_id} already")
        row = None
        if terms.kind in ("no_deposit", "free_spins"):
            row = await _grant(s, who.player_id, offer_id, version, terms, _grant_amount(terms, None), "opt-in", now)
    grant = None
    if row is not None:
        grant = grants.view(await worker.settle(rt, row["grant_id"], wait=True) or row)
    return c.OptInView(offer_id=offer_id, player_id=who.player_id, opted_in_at=now, grant=grant)


@public.get("/grants", response_model=list[c.GrantView])
async def my_grants(request: Request, who: PlayerContext = Depends(player_context),
                    state: c.GrantState | None = None) -> list[c.GrantView]:
    """The player's bonuses, newest first, with their wagering progress."""
    async with _rt(request).database.session() as s:
        return [grants.view(r) for r in await grants.of_player(s, who.player_id, state)]


@public.post("/grants/{grant_id}/forfeit", response_model=c.GrantView,
             responses=refusals(c.BONUS_GRANT_NOT_FOUND, c.BONUS_GRANT_CLOSED))
async def forfeit(grant_id: uuid.UUID, request: Request, who: PlayerContext = Depends(player_context)) -> c.GrantView:
    """Give up an open bonus: what is left of its money goes back; the player's cash is untouched."""
    rt = _rt(request)
    now = worker.now_of(rt)
    async with rt.database.transaction() as s:
        row = await _open_grant(s, grant_id, who.player_id)
        after = await grants.close(s, row, "forfeited", "forfeited", now)
    return grants.view(await worker.settle(rt, grant_id, wait=True) or after)
