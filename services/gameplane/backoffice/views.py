"""The back office's pages. Every screen's route names its screen (session.screen), which checks
the role table; every form post carries the CSRF token (kit.pages.verify_csrf). A refusal from a
service is shown on the form in words; a service that is not running makes the page say the
feature is unavailable right now."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gameplane.backoffice import charts, display, paging, screens
from gameplane.backoffice.session import action, screen, signed_in
from gameplane.backoffice.upstream import Office, Refused, Unavailable, words_of
from gameplane.kit.http import DependencyError
from gameplane.kit.pages import Pages, verify_csrf
from gameplane.kit.staff import StaffContext

router = APIRouter(include_in_schema=False)
CSRF = [Depends(verify_csrf)]
Text = Annotated[str, Form(max_length=500)]

# The outcome of a form post, named in the redirect (never free text from the request).
DONE = {
    "kyc-verified": "KYC verified.",
    "kyc-rejected": "KYC rejected.",
    "note-added": "Note added.",
    "withdrawal-approved": "Withdrawal released: it goes on to the payout.",
    "withdrawal-rejected": "Withdrawal rejected: the held money goes back to the player.",
    "case-assigned": "Case assigned.",
    "case-decided": "Case decided.",
    "campaign-created": "Campaign created.",
    "offer-created": "Offer created as a draft.",
    "offer-published": "Offer published.",
    "month-closed": "Month closed: its statements are final.",
    "staff-changed": "Staff account changed; it takes effect at the person's next sign-in (within 10 minutes).",
}


def pages_of(request: Request) -> Pages:
    return request.app.state.pages  # type: ignore[no-any-return]


def office(request: Request) -> Office:
    rt = request.app.state.runtime
    return Office(rt, request.state.staff_token, timeout=rt.settings.call_timeout_seconds)


def render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    who: StaffContext | None = getattr(request.state, "staff", None)
    done = DONE.get(request.query_params.get("done", ""))
    return pages_of(request).render(
        request, template, status_code=status_code, who=who, nav=screens.visible(who) if who else [],
        current=getattr(request.state, "screen", None), done=done,
        may=lambda a: who is not None and screens.may(who, a), **ctx)


def back(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}{'&' if '?' in path else '?'}done={done}", status_code=303)


# ---- sign-in ------------------------------------------------------------------------------------

@router.get("/")
async def home(request: Request) -> Response:
    who = signed_in(request)
    first = screens.visible(who)
    return RedirectResponse(first[0].path if first else "/login", status_code=303)


@router.get("/login")
async def login_form(request: Request, expired: bool = False) -> HTMLResponse:
    return render(request, "login.html", expired=expired, error=None, username="")


@router.post("/login", dependencies=CSRF)
async def login(request: Request, username: Annotated[str, Form(max_length=64)],
                password: Annotated[str, Form(max_length=128)],
                totp: Annotated[str, Form(max_length=12)]) -> Response:
    rt = request.app.state.runtime
    code = totp.replace(" ", "")
    error = None
    if not username or not password or not code.isdigit() or len(code) != 6:
        error = "Enter your username, your password and the 6-digit code of your authenticator app."
    else:
        try:
            r = await rt.client("players", timeout=rt.settings.call_timeout_seconds).post(
                "/internal/players/staff/login", json={"username": username, "password": password, "totp": code})
        except (LookupError, DependencyError):
            return render(request, "login.html", status_code=503, expired=False, username=username,
                          error="Sign-in is unavailable right now (the players service does not answer). "
                                "Try again in a moment.")
        if r.status_code == 200:
            response = RedirectResponse("/", status_code=303)
            pages_of(request).start_session(response, r.json()["access_token"])
            return response
        if r.status_code >= 500:
            error = "Sign-in is unavailable right now. Try again in a moment."
        else:
            try:
                error = words_of(r.json())
            except ValueError:
                error = "Sign-in refused."
    return render(request, "login.html", status_code=400 if error and "Enter" in error else 401,
                  expired=False, username=username, error=error)


@router.post("/logout", dependencies=CSRF)
async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    pages_of(request).end_session(response)
    return response


# ---- players ------------------------------------------------------------------------------------

def _page_size(request: Request) -> int:
    return int(request.app.state.runtime.settings.page_size)


@router.get("/players")
async def players(request: Request, who: StaffContext = Depends(screen("players")),
                  q: str | None = Query(None, max_length=320),
                  kyc: Literal["", "unverified", "pending", "verified", "rejected"] = "",
                  offset: int = Query(0, ge=0, le=1_000_000)) -> HTMLResponse:
    size = _page_size(request)
    # one row more than a page says whether another page follows, without counting every match
    found = await office(request).get("players", "/internal/players", q=(q or "").strip() or None,
                                      kyc_state=kyc or None, limit=size + 1, offset=offset)
    keep = {k: v for k, v in (("q", (q or "").strip()), ("kyc", kyc)) if v}
    pages = {"first": offset + 1, "last": offset + min(len(found), size),
             "next": urlencode({**keep, "offset": offset + size}) if len(found) > size else None,
             "previous": urlencode({**keep, "offset": max(offset - size, 0)}) if offset > 0 else None}
    return render(request, "players.html", players=found[:size], q=q or "", kyc=kyc, pages=pages)


async def _profile(request: Request, player_id: uuid.UUID, cursor: str | None = None) -> dict[str, Any]:
    """Everything the profile shows; `cursor` (the wallet's history cursor) pages the transactions."""
    o = office(request)
    summary, protection, notes = await asyncio.gather(
        o.get("players", f"/internal/players/{player_id}"),
        o.get("players", f"/internal/players/{player_id}/protection"),
        o.get("players", f"/internal/players/{player_id}/notes", limit=50))
    try:
        balances, history = await asyncio.gather(
            o.get("wallet", f"/internal/wallet/players/{player_id}/balances"),
            o.get("wallet", f"/internal/wallet/players/{player_id}/transactions",
                  limit=_page_size(request), cursor=cursor))
        wallet_down = False
    except Unavailable:
        balances, history, wallet_down = {"balances": []}, {"items": []}, True
    risk: dict[str, Any] | None = None
    risk_down = False
    if screens.may(request.state.staff, "risk.view"):
        try:
            risk = await o.get("risk", f"/internal/risk/players/{player_id}")
        except Unavailable:
            risk_down = True
    return {"player": summary, "protection": protection, "notes": notes, "balances": balances["balances"],
            "transactions": history["items"], "older": history.get("next_cursor"), "paged": bool(cursor),
            "wallet_down": wallet_down, "risk": risk, "risk_down": risk_down}


@router.get("/players/{player_id}")
async def player(request: Request, player_id: uuid.UUID, who: StaffContext = Depends(screen("players")),
                 cursor: str | None = Query(None, max_length=100)) -> HTMLResponse:
    return render(request, "player.html", error=None, **await _profile(request, player_id, cursor))


@router.post("/players/{player_id}/kyc", dependencies=CSRF)
async def decide_kyc(request: Request, player_id: uuid.UUID, decision: Annotated[str, Form()],
                     reason: Text = "", who: StaffContext = Depends(screen("players"))) -> Response:
    action(who, "kyc.decide")
    error = None
    if decision not in ("verified", "rejected"):
        error = "Choose verify or reject."
    else:
        try:
            await office(request).post("players", f"/internal/players/{player_id}/kyc/decision",
                                       {"state": decision, "reason": reason or None})
            return back(f"/players/{player_id}", f"kyc-{decision}")
        except Refused as exc:
            error = exc.words
    return render(request, "player.html", status_code=422, error=error, **await _profile(request, player_id))


@router.post("/players/{player_id}/notes", dependencies=CSRF)
async def add_note(request: Request, player_id: uuid.UUID, text: Annotated[str, Form(max_length=2000)] = "",
                   who: StaffContext = Depends(screen("players"))) -> Response:
    error = None
    if not text.strip():
        error = "Write the note before adding it."
    else:
        try:
            await office(request).post("players", f"/internal/players/{player_id}/notes", {"text": text.strip()})
            return back(f"/players/{player_id}", "note-added")
        except Refused as exc:
            error = exc.words
    return render(request, "player.html", status_code=422, error=error, **await _profile(request, player_id))


# ---- held withdrawals ---------------------------------------------------------------------------

WithdrawalState = Literal["held", "review", "processing", "failed"]


async def _withdrawals(request: Request, state: str) -> dict[str, Any]:
    return {"withdrawals": await office(request).get("payments", "/internal/payments/withdrawals", state=state),
            "state": state}


@router.get("/withdrawals")
async def withdrawals(request: Request, who: StaffContext = Depends(screen("withdrawals")),
                      state: WithdrawalState = "held") -> HTMLResponse:
    return render(request, "withdrawals.html", error=None, **await _withdrawals(request, state))


@router.post("/withdrawals/{payment_id}/{decision}", dependencies=CSRF)
async def decide_withdrawal(request: Request, payment_id: uuid.UUID, decision: Literal["approve", "reject"],
                            reason: Text = "", state: Annotated[WithdrawalState, Form()] = "held",
                            who: StaffContext = Depends(screen("withdrawals"))) -> Response:
    action(who, "withdrawal.decide")
    error = None
    if len(reason.strip()) < 3:
        error = "Give a reason (at least 3 characters): it is kept in the audit log."
    else:
        try:
            await office(request).post("payments", f"/internal/payments/withdrawals/{payment_id}/{decision}",
                                       {"reason": reason.strip()})
            return back(f"/withdrawals?state={state}", f"withdrawal-{decision}d")
        except Refused as exc:
            error = exc.words
    return render(request, "withdrawals.html", status_code=422, error=error, **await _withdrawals(request, state))


# ---- risk cases ---------------------------------------------------------------------------------

CaseState = Literal["open", "approved", "rejected"]


async def _cases(request: Request, state: str) -> dict[str, Any]:
    page = await office(request).get("risk", "/internal/risk/cases", state=state, limit=100)
    return {"cases": page["cases"], "state": state}


@router.get("/cases")
async def cases(request: Request, who: StaffContext = Depends(screen("cases")),
                state: CaseState = "open") -> HTMLResponse:
    return render(request, "cases.html", error=None, **await _cases(request, state))


@router.post("/cases/{case_id}/assign", dependencies=CSRF)
async def assign_case(request: Request, case_id: uuid.UUID,
                      who: StaffContext = Depends(screen("cases"))) -> Response:
    try:
        await office(request).post("risk", f"/internal/risk/cases/{case_id}/assign", {})
        return back("/cases", "case-assigned")
    except Refused as exc:
        return render(request, "cases.html", status_code=422, error=exc.words, **await _cases(request, "open"))


@router.post("/cases/{case_id}/decision", dependencies=CSRF)
async def decide_case(request: Request, case_id: uuid.UUID, outcome: Annotated[Literal["approve", "reject"], Form()],
                      reason: Text = "", who: StaffContext = Depends(screen("cases"))) -> Response:
    action(who, "case.decide")
    if not reason.strip():
        return render(request, "cases.html", status_code=422, error="Give a reason for the decision.",
                      **await _cases(request, "open"))
    try:
        await office(request).post("risk", f"/internal/risk/cases/{case_id}/decision",
                                   {"outcome": outcome, "reason": reason.strip()})
        return back("/cases", "case-decided")
    except Refused as exc:
        return render(request, "cases.html", status_code=422, error=exc.words, **await _cases(request, "open"))


# ---- audit log ----------------------------------------------------------------------------------

AUDITED = ("players", "wallet", "payments", "risk", "bonus", "affiliates")


@router.get("/audit")
async def audit(request: Request, who: StaffContext = Depends(screen("audit")),
                actor: str | None = Query(None, max_length=200), target: str | None = Query(None, max_length=200),
                service: Literal["", *AUDITED] = "",  # type: ignore[valid-type]
                cursor: str | None = Query(None, max_length=400)) -> HTMLResponse:
    o = office(request)
    wanted = [service] if service else list(AUDITED)
    size = _page_size(request)
    cursors = paging.parse(cursor, wanted)  # an edited cursor: the newest page

    async def one(name: str) -> tuple[str, paging.Fetched | None]:
        if cursors.get(name) == paging.END:
            return name, paging.Fetched([], more=False)
        try:
            page = await o.get(name, f"/internal/{name}/audit", actor=actor or None, target=target or None,
                               cursor=cursors.get(name), limit=size)
        except Unavailable:
            return name, None
        records = [{**r, "service": name, "when": datetime.fromisoformat(r["at"])} for r in page["records"]]
        return name, paging.Fetched(records, more=page["next_cursor"] is not None)

    answers = dict(await asyncio.gather(*(one(n) for n in wanted)))
    fetched = {n: f for n, f in answers.items() if f is not None}
    shown, following = paging.merge(fetched, size, lambda a, b: a["when"] > b["when"], cursors)
    keep = {k: v for k, v in (("service", service), ("actor", actor), ("target", target)) if v}
    return render(request, "audit.html", records=[r for _, r in shown],
                  missing=[n for n, f in answers.items() if f is None], services=AUDITED,
                  service=service, actor=actor or "", target=target or "", paged=bool(cursors),
                  newest=urlencode(keep),
                  older=urlencode({**keep, "cursor": paging.render(following)}) if following else None)


# ---- staff accounts -----------------------------------------------------------------------------

async def _staff(request: Request) -> dict[str, Any]:
    return {"accounts": await office(request).get("players", "/internal/players/staff/accounts"),
            "roles": screens.EVERYONE}


@router.get("/staff")
async def staff_accounts(request: Request, who: StaffContext = Depends(screen("staff"))) -> HTMLResponse:
    return render(request, "staff.html", error=None, **await _staff(request))


@router.post("/staff/{staff_id}", dependencies=CSRF)
async def change_staff(request: Request, staff_id: uuid.UUID, who: StaffContext = Depends(screen("staff"))) -> Response:
    """Roles (checkboxes `role`) and `active` of one account; players refuses leaving no active admin."""
    form = await request.form()
    roles = [r for r in form.getlist("role") if r in screens.EVERYONE]
    if not roles:
        return render(request, "staff.html", status_code=422, error="Keep at least one role.",
                      **await _staff(request))
    try:
        await office(request).call("players", "PATCH", f"/internal/players/staff/accounts/{staff_id}",
                                   json={"roles": roles, "active": form.get("active") == "yes"})
        return back("/staff", "staff-changed")
    except Refused as exc:
        return render(request, "staff.html", status_code=422, error=exc.words, **await _staff(request))


# ---- KPIs ---------------------------------------------------------------------------------------

@router.get("/kpis")
async def kpis(request: Request, who: StaffContext = Depends(screen("kpis")),
               period_from: date | None = Query(None, alias="from"), period_to: date | None = Query(None, alias="to"),
               currency: str = Query("EUR", pattern=r"^[A-Z]{3}$")) -> HTMLResponse:
    today = datetime.now(UTC).date()
    period_to = period_to or today
    period_from = period_from or period_to - timedelta(days=13)
    error = None
    rows: list[dict[str, Any]] = []
    rtp: list[dict[str, Any]] = []
    if period_from > period_to or (period_to - period_from).days > 92:
        error = "Choose a period of at most 93 days whose start is not after its end."
    else:
        o = office(request)
        params = {"from": period_from.isoformat(), "to": period_to.isoformat(), "currency": currency}
        report, rtp_report = await asyncio.gather(o.get("analytics", "/internal/analytics/kpis", **params),
                                                  o.get("analytics", "/internal/analytics/rtp", **params))
        rows, rtp = report["rows"], rtp_report["rows"]
    def cash(v: int) -> str:
        return display.money(v, currency)

    def share(v: int) -> str:  # charted in basis points: integers for the geometry
        return display.percent(v / 10_000, 1)

    money_chart = charts.grouped_bars([(r["day"][5:], [r["ggr"], r["ngr"]]) for r in rows], ("GGR", "NGR"), cash)
    # hold_pct is already a percentage (contracts.kpis.hold_pct); RTPs are fractions
    hold_chart = charts.grouped_bars([(r["day"][5:], [_bp((r["hold_pct"] or 0) / 100)]) for r in rows], ("hold",),
                                     share)
    rtp_chart = charts.grouped_bars([(r["game_id"], [_bp(r["observed"]), _bp(r["certified"])]) for r in rtp],
                                    ("observed RTP", "certified RTP"), share)
    return render(request, "kpis.html", error=error, rows=rows, rtp=rtp, currency=currency,
                  period_from=period_from, period_to=period_to, money_chart=money_chart,
                  hold_chart=hold_chart, rtp_chart=rtp_chart)


def _bp(share: float | None) -> int:
    return round((share or 0) * 10_000)


# ---- bonus campaigns and offers -----------------------------------------------------------------

async def _bonus(request: Request) -> dict[str, Any]:
    o = office(request)
    campaigns, offers = await asyncio.gather(o.get("bonus", "/internal/bonus/campaigns"),
                                             o.get("bonus", "/internal/bonus/offers"))
    return {"campaigns": campaigns, "offers": offers}


@router.get("/bonus")
async def bonus(request: Request, who: StaffContext = Depends(screen("bonus"))) -> HTMLResponse:
    return render(request, "bonus.html", error=None, **await _bonus(request))


async def _bonus_write(request: Request, path: str, body: dict[str, Any], done: str) -> Response:
    try:
        await office(request).post("bonus", path, body)
        return back("/bonus", done)
    except Refused as exc:
        return render(request, "bonus.html", status_code=422, error=exc.words, **await _bonus(request))


@router.post("/bonus/campaigns", dependencies=CSRF)
async def create_campaign(request: Request, name: Annotated[str, Form(max_length=200)],
                          who: StaffContext = Depends(screen("bonus"))) -> Response:
    action(who, "bonus.write")
    return await _bonus_write(request, "/internal/bonus/campaigns", {"name": name}, "campaign-created")


@router.post("/bonus/campaigns/{campaign_id}/offers", dependencies=CSRF)
async def create_offer(request: Request, campaign_id: uuid.UUID, name: Annotated[str, Form(max_length=200)],
                       amount: Annotated[str, Form(max_length=20)], wagering: Annotated[str, Form(max_length=4)],
                       currency: Annotated[str, Form(pattern=r"^[A-Z]{3}$")] = "EUR",
                       who: StaffContext = Depends(screen("bonus"))) -> Response:
    """A no-deposit offer from the form (amount in minor units); other kinds through the API."""
    action(who, "bonus.write")
    if not amount.isdigit() or not wagering.isdigit():
        return render(request, "bonus.html", status_code=422, error="Amount and wagering must be whole numbers.",
                      **await _bonus(request))
    terms = {"name": name, "kind": "no_deposit", "currency": currency, "amount": int(amount),
             "wagering_multiplier": int(wagering)}
    return await _bonus_write(request, f"/internal/bonus/campaigns/{campaign_id}/offers", terms, "offer-created")


@router.post("/bonus/offers/{offer_id}/publish", dependencies=CSRF)
async def publish_offer(request: Request, offer_id: uuid.UUID, version: Annotated[int, Form(ge=1)],
                        who: StaffContext = Depends(screen("bonus"))) -> Response:
    action(who, "bonus.write")
    return await _bonus_write(request, f"/internal/bonus/offers/{offer_id}/publish", {"version": version},
                              "offer-published")


# ---- affiliate statements -----------------------------------------------------------------------

async def _statements(request: Request, month: str) -> dict[str, Any]:
    o = office(request)
    found = await o.get("affiliates", "/internal/affiliates/affiliates")
    statements = await asyncio.gather(*(
        o.get("affiliates", f"/internal/affiliates/affiliates/{a['affiliate_id']}/statements/{month}")
        for a in found))
    return {"month": month, "rows": list(zip(found, statements, strict=True))}


@router.get("/affiliates")
async def affiliates(request: Request, who: StaffContext = Depends(screen("affiliates")),
                     month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$")) -> HTMLResponse:
    month = month or datetime.now(UTC).strftime("%Y-%m")
    return render(request, "affiliates.html", error=None, **await _statements(request, month))


@router.post("/affiliates/close", dependencies=CSRF)
async def close_month(request: Request, month: Annotated[str, Form(pattern=r"^\d{4}-\d{2}$")],
                      who: StaffContext = Depends(screen("affiliates"))) -> Response:
    """Close a month that has ended: its statements become final (affiliates refuses an open month)."""
    action(who, "affiliates.close")
    try:
        await office(request).post("affiliates", f"/internal/affiliates/statements/{month}/close", None)
        return back(f"/affiliates?month={month}", "month-closed")
    except Refused as exc:
        return render(request, "affiliates.html", status_code=422, error=exc.words,
                      **await _statements(request, month))

