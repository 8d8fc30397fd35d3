"""Routes of the affiliates service (listed in gameplane.contracts.affiliates).

public       /v1/affiliates/track/{code} (anyone: a click), /v1/affiliates/me... (an affiliate's API
             key); both through the gateway, whose service token they require
back office  /internal/affiliates/... (service token: backoffice, plus a staff token: reads
             support/finance/admin, writes finance/admin; every write audited)
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import date, datetime

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gameplane.affiliates import clicks, metrics, statements, store
from gameplane.affiliates.settings import AffiliatesSettings
from gameplane.contracts import affiliates as c
from gameplane.contracts.kpis import MoneyTotals, ggr, ngr
from gameplane.kit import audit
from gameplane.kit.app import Runtime
from gameplane.kit.audit import Actor, target_of
from gameplane.kit.auth import CLIENT_IP_HEADER, callers
from gameplane.kit.db import utcnow
from gameplane.kit.problems import responses as refusals
from gameplane.kit.staff import StaffContext, staff

public = APIRouter(prefix=c.PREFIX, tags=["public"], dependencies=[Depends(callers("gateway"))])
backoffice = APIRouter(prefix=c.INTERNAL_PREFIX, tags=["back office"], dependencies=[Depends(callers("backoffice"))])
READERS = staff("support", "finance", "admin")
WRITERS = staff("finance", "admin")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _settings(request: Request) -> AffiliatesSettings:
    return _rt(request).settings  # type: ignore[return-value]


def now_of(rt: Runtime) -> datetime:
    clock = rt.state.get("clock")
    return clock() if clock is not None else utcnow()


def _tax(request: Request) -> int:
    return _settings(request).profile.gaming_tax_basis_points


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# ---- public: clicks -------------------------------------------------------------------------------

@public.get("/track/{code}", status_code=302, response_class=RedirectResponse, responses=refusals(c.LINK_NOT_FOUND))
async def track(code: str, request: Request,
                sub1: str = "", sub2: str = "", sub3: str = "", sub4: str = "", sub5: str = "") -> RedirectResponse:
    """A click on a tracking link: recorded (bots and duplicates flagged, never attributed) and
    redirected to the link's landing URL with `click_id` added."""
    rt = _rt(request)
    async with rt.database.transaction() as s:
        link = (await s.execute(text("SELECT link_id, affiliate_id, landing_url FROM links WHERE code = :c"),
                                {"c": code[:64]})).mappings().one_or_none()
        if link is None:
            raise c.LINK_NOT_FOUND(f"no link {code[:64]!r}")
        ip = request.headers.get(CLIENT_IP_HEADER) or (request.client.host if request.client else "unknown")
        subs = clicks.sub_ids({"sub1": sub1, "sub2": sub2, "sub3": sub3, "sub4": sub4, "sub5": sub5})
        click_id, flag = await clicks.record(s, link["link_id"], link["affiliate_id"], ip,
                                             request.headers.get("user-agent"), subs, now_of(rt),
                                             _settings(request).duplicate_click_seconds)
    metrics.CLICKS.labels(flag or "valid").inc()
    return RedirectResponse(clicks.landing(link["landing_url"], click_id), status_code=302,
                            headers={"Cache-Control": "no-store"})


# ---- public: the affiliate's own API --------------------------------------------------------------

async def affiliate_of(request: Request, x_api_key: str | None = Header(default=None)) -> uuid.UUID:
    """The affiliate whose API key came in X-Api-Key (only its SHA-256 is stored)."""
    if not x_api_key:
        raise c.API_KEY_INVALID("send the API key in X-Api-Key")
    async with _rt(request).database.session() as s:
        found = (await s.execute(text("SELECT affiliate_id FROM affiliates WHERE api_key_hash = :h AND active"),
                                 {"h": _key_hash(x_api_key)})).scalar_one_or_none()
    if found is None:
        raise c.API_KEY_INVALID("unknown API key")
    return found  # type: ignore[no-any-return]


KEYED = refusals(c.API_KEY_INVALID)


@public.get("/me", response_model=c.AffiliateView, responses=KEYED)
async def me(request: Request, affiliate_id: uuid.UUID = Depends(affiliate_of)) -> c.AffiliateView:
    async with _rt(request).database.session() as s:
        return await store.affiliate(s, affiliate_id)


async def _links(request: Request, affiliate_id: uuid.UUID) -> list[c.LinkView]:
    async with _rt(request).database.session() as s:
        rows = (await s.execute(text(
            "SELECT l.link_id, l.affiliate_id, l.code, l.landing_url, l.created_at, "
            "COUNT(k.click_id) FILTER (WHERE k.flag IS NULL) AS clicks, "
            "COUNT(k.click_id) FILTER (WHERE k.flag IS NOT NULL) AS flagged_clicks "
            "FROM links l LEFT JOIN clicks k ON k.link_id = l.link_id WHERE l.affiliate_id = :a "
            "GROUP BY l.link_id ORDER BY l.created_at, l.link_id"), {"a": affiliate_id})).mappings().all()
    return [c.LinkView.model_validate(dict(r)) for r in rows]


@public.get("/me/links", response_model=list[c.LinkView], responses=KEYED)
async def my_links(request: Request, affiliate_id: uuid.UUID = Depends(affiliate_of)) -> list[c.LinkView]:
    return await _links(request, affiliate_id)


def _month(value: str | None, request: Request) -> date:
    if value is None:
        today = now_of(_rt(request)).date()
        return date(today.year, today.month, 1)
    return c.parse_month(value)


@public.get("/me/players", response_model=list[c.PlayerAggregate], responses=refusals(c.API_KEY_INVALID,
                                                                                        c.INVALID_MONTH))
async def my_players(request: Request, month: str | None = Query(default=None, max_length=7),
                     affiliate_id: uuid.UUID = Depends(affiliate_of)) -> list[c.PlayerAggregate]:
    """The affiliate's referred players in a month (default: this one), each under its pseudonymous
    ref: money aggregates only, never who the player is."""
    m0 = _month(month, request)
    m1 = statements.next_month(m0)
    async with _rt(request).database.session() as s:
        rows = (await s.execute(text(
            "SELECT a.player_ref, a.registered_at, a.country, a.currency, a.qualified_at, f.amount AS first_deposit, "
            "COALESCE(SUM(d.stakes), 0) AS stakes, COALESCE(SUM(d.wins), 0) AS wins, "
            "COALESCE(SUM(d.bonus_stakes), 0) AS bs, COALESCE(SUM(d.bonus_wins), 0) AS bw, "
            "COALESCE(SUM(d.bonus_converted), 0) AS bc, COALESCE(SUM(d.payment_fees), 0) AS fees "
            "FROM attributions a LEFT JOIN first_deposits f ON f.player_id = a.player_id "
            "LEFT JOIN player_days d ON d.player_id = a.player_id AND d.currency = a.currency "
            "AND d.day >= :m0 AND d.day < :m1 WHERE a.affiliate_id = :a "
            "GROUP BY a.player_ref, a.registered_at, a.country, a.currency, a.qualified_at, f.amount "
            "ORDER BY a.player_ref"),
            {"a": affiliate_id, "m0": m0, "m1": m1})).mappings().all()
    out = []
    for r in rows:
        t = MoneyTotals(stakes=int(r["stakes"]), wins=int(r["wins"]), bonus_stakes=int(r["bs"]),
                        bonus_wins=int(r["bw"]), bonus_converted=int(r["bc"]), payment_fees=int(r["fees"]))
        out.append(c.PlayerAggregate(player_ref=r["player_ref"], registered_on=r["registered_at"].date(),
                                     country=r["country"], currency=r["currency"],
                                     first_deposit=r["first_deposit"],
                                     qualified=r["qualified_at"] is not None, stakes=t.stakes, ggr=ggr(t),
                                     ngr_before_tax=ngr(t)))
    return out


@public.get("/me/statements/{month}", response_model=c.StatementView,
            responses=refusals(c.API_KEY_INVALID, c.INVALID_MONTH))
async def my_statement(month: str, request: Request,
                       affiliate_id: uuid.UUID = Depends(affiliate_of)) -> c.StatementView:
    m = c.parse_month(month)
    async with _rt(request).database.session() as s:
        return await statements.view(s, affiliate_id, m, _tax(request))


# ---- back office ----------------------------------------------------------------------------------

@backoffice.post("/affiliates", status_code=201, response_model=c.AffiliateCreated,
                 responses=refusals(c.INVALID_PARENT))
async def create_affiliate(body: c.AffiliateCreate, request: Request,
                           who: StaffContext = Depends(WRITERS)) -> c.AffiliateCreated:
    """A new affiliate (a sub-affiliate with `parent_id`) with its deal. The API key and the
    postback secret are in this answer only."""
    rt = _rt(request)
    now = now_of(rt)
    api_key = "ak_" + secrets.token_urlsafe(32)
    secret = secrets.token_urlsafe(32)
    affiliate_id = uuid.uuid4()
    async with rt.database.transaction() as s:
        if body.parent_id is not None:
            parent = (await s.execute(text("SELECT parent_id FROM affiliates WHERE affiliate_id = :p"),
                                      {"p": body.parent_id})).one_or_none()
            if parent is None or parent[0] is not None:
                raise c.INVALID_PARENT(f"{body.parent_id} is not a top-level affiliate")
        await s.execute(text(
            "INSERT INTO affiliates (affiliate_id, name, parent_id, override_bp, postback_url, postback_secret, "
            "api_key_hash, deal, created_at) VALUES (:a, :n, :p, :o, :u, :sec, :h, CAST(:d AS jsonb), :now)"),
            {"a": affiliate_id, "n": body.name, "p": body.parent_id, "o": body.override_bp,
             "u": str(body.postback_url) if body.postback_url else None, "sec": secret, "h": _key_hash(api_key),
             "d": body.deal.model_dump_json(), "now": now})
        await audit.record(s, Actor.of(who), "affiliates.affiliate_created", target_of("affiliate", affiliate_id),
                           None, body.model_dump(mode="json"), at=now)
        view = await store.affiliate(s, affiliate_id)
    return c.AffiliateCreated(**view.model_dump(), api_key=api_key, postback_secret=secret)


@backoffice.get("/affiliates", response_model=list[c.AffiliateView])
async def list_affiliates(request: Request, parent_id: uuid.UUID | None = None,
                          _who: StaffContext = Depends(READERS)) -> list[c.AffiliateView]:
    async with _rt(request).database.session() as s:
        return await store.affiliates(s, parent_id)


@backoffice.get("/affiliates/{affiliate_id}", response_model=c.AffiliateView,
                responses=refusals(c.AFFILIATE_NOT_FOUND))
async def get_affiliate(affiliate_id: uuid.UUID, request: Request,
                        _who: StaffContext = Depends(READERS)) -> c.AffiliateView:
    async with _rt(request).database.session() as s:
        return await store.affiliate(s, affiliate_id)


@backoffice.put("/affiliates/{affiliate_id}/deal", response_model=c.AffiliateView,
                responses=refusals(c.AFFILIATE_NOT_FOUND))
async def set_deal(affiliate_id: uuid.UUID, body: c.DealTerms, request: Request,
                   who: StaffContext = Depends(WRITERS)) -> c.AffiliateView:
    """A new deal: it applies to every month not closed yet (closed statements keep theirs)."""
    rt = _rt(request)
    now = now_of(rt)
    async with rt.database.transaction() as s:
        before = await store.affiliate(s, affiliate_id)
        await s.execute(text("UPDATE affiliates SET deal = CAST(:d AS jsonb) WHERE affiliate_id = :a"),
                        {"d": body.model_dump_json(), "a": affiliate_id})
        await audit.record(s, Actor.of(who), "affiliates.deal_changed", target_of("affiliate", affiliate_id),
                           before.deal.model_dump(mode="json"), body.model_dump(mode="json"), at=now)
        return await store.affiliate(s, affiliate_id)


@backoffice.put("/affiliates/{affiliate_id}/active", response_model=c.AffiliateView,
                responses=refusals(c.AFFILIATE_NOT_FOUND))
async def set_active(affiliate_id: uuid.UUID, body: c.ActiveRequest, request: Request,
                     who: StaffContext = Depends(WRITERS)) -> c.AffiliateView:
    """Deactivate (or reactivate) an affiliate: while inactive its API key is refused and new
    registrations are not attributed to its clicks (`affiliate-inactive`); statements go on."""
    rt = _rt(request)
    now = now_of(rt)
    async with rt.database.transaction() as s:
        before = await store.affiliate(s, affiliate_id)
        await s.execute(text("UPDATE affiliates SET active = :v WHERE affiliate_id = :a"),
                        {"v": body.active, "a": affiliate_id})
        await audit.record(s, Actor.of(who), "affiliates.activated" if body.active else "affiliates.deactivated",
                           target_of("affiliate", affiliate_id), {"active": before.active},
                           {"active": body.active, "reason": body.reason}, at=now)
        return await store.affiliate(s, affiliate_id)


@backoffice.post("/affiliates/{affiliate_id}/links", status_code=201, response_model=c.LinkView,
                 responses=refusals(c.AFFILIATE_NOT_FOUND, c.LINK_CODE_TAKEN))
async def create_link(affiliate_id: uuid.UUID, body: c.LinkCreate, request: Request,
                      who: StaffContext = Depends(WRITERS)) -> c.LinkView:
    rt = _rt(request)
    now = now_of(rt)
    code = body.code or secrets.token_urlsafe(9)
    link_id = uuid.uuid4()
    try:
        async with rt.database.transaction() as s:
            await store.affiliate(s, affiliate_id)
            await s.execute(text("INSERT INTO links (link_id, affiliate_id, code, landing_url, created_at) "
                                 "VALUES (:l, :a, :c, :u, :now)"),
                            {"l": link_id, "a": affiliate_id, "c": code, "u": str(body.landing_url), "now": now})
            await audit.record(s, Actor.of(who), "affiliates.link_created", target_of("link", link_id), None,
                               {"affiliate_id": str(affiliate_id), "code": code, "landing_url": str(body.landing_url)},
                               at=now)
    except IntegrityError:
        raise c.LINK_CODE_TAKEN(f"the code {code!r} is taken") from None
    return c.LinkView(link_id=link_id, affiliate_id=affiliate_id, code=code, landing_url=str(body.landing_url),
                      created_at=now)


@backoffice.get("/affiliates/{affiliate_id}/links", response_model=list[c.LinkView])
async def list_links(affiliate_id: uuid.UUID, request: Request,
                     _who: StaffContext = Depends(READERS)) -> list[c.LinkView]:
    return await _links(request, affiliate_id)


@backoffice.get("/affiliates/{affiliate_id}/statements/{month}", response_model=c.StatementView,
                responses=refusals(c.AFFILIATE_NOT_FOUND, c.INVALID_MONTH))
async def get_statement(affiliate_id: uuid.UUID, month: str, request: Request,
                        _who: StaffContext = Depends(READERS)) -> c.StatementView:
    """A closed month's final statement, or an open month's as its figures stand now."""
    m = c.parse_month(month)
    async with _rt(request).database.session() as s:
        return await statements.view(s, affiliate_id, m, _tax(request))


@backoffice.post("/statements/{month}/close", response_model=c.CloseResult,
                 responses=refusals(c.INVALID_MONTH, c.MONTH_NOT_OVER, c.MONTH_CLOSED, c.MONTHS_IN_ORDER))
async def close_month(month: str, request: Request, who: StaffContext = Depends(WRITERS)) -> c.CloseResult:
    """Close a month that has ended: every affiliate's statement of it becomes final."""
    m = c.parse_month(month)
    rt = _rt(request)
    now = now_of(rt)
    async with rt.database.transaction() as s:
        n = await statements.close(s, m, _tax(request), who.actor, now)
        await audit.record(s, Actor.of(who), "affiliates.month_closed", f"month:{month}", None,
                           {"statements": n}, at=now)
    return c.CloseResult(month=statements.month_label(m), closed=n)


@backoffice.get("/players/{player_id}", response_model=c.AttributionView, responses=refusals(c.PLAYER_NOT_FOUND))
async def get_attribution(player_id: uuid.UUID, request: Request,
                          _who: StaffContext = Depends(READERS)) -> c.AttributionView:
    async with _rt(request).database.session() as s:
        row = (await s.execute(text(
            "SELECT a.player_id, a.player_ref, a.affiliate_id, a.click_id, a.reason, a.registered_at, a.qualified_at, "
            "f.amount AS first_deposit FROM attributions a LEFT JOIN first_deposits f ON f.player_id = a.player_id "
            "WHERE a.player_id = :p"), {"p": player_id})).mappings().one_or_none()
    if row is None:
        raise c.PLAYER_NOT_FOUND(f"no registration of {player_id} seen")
    return c.AttributionView.model_validate(dict(row))


@backoffice.get("/postbacks", response_model=list[c.PostbackView])
async def list_postbacks(request: Request, state: str | None = Query(default=None, pattern="^(pending|acked)$"),
                         affiliate_id: uuid.UUID | None = None,
                         _who: StaffContext = Depends(READERS)) -> list[c.PostbackView]:
    async with _rt(request).database.session() as s:
        rows = (await s.execute(text(
            "SELECT postback_id, affiliate_id, kind, state, attempts, next_at, last_error, acked_at FROM postbacks "
            "WHERE (CAST(:s AS text) IS NULL OR state = :s) AND (CAST(:a AS uuid) IS NULL OR affiliate_id = :a) "
            "ORDER BY created_at LIMIT 1000"), {"s": state, "a": affiliate_id})).mappings().all()
    return [c.PostbackView.model_validate(dict(r)) for r in rows]
