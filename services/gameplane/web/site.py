"""The player site's pages. Every route reads and changes the platform through the gateway with the
signed-in player's token; refusals are shown on the page in words, a feature whose service is not
running shows "unavailable right now"."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, get_args
from urllib.parse import quote, urlencode

import pycountry
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from gameplane.contracts.jurisdiction import profile
from gameplane.contracts.players import KycDocument
from gameplane.gateway.routes import client_ip
from gameplane.kit.pages import CSRF_FAILED, Pages, set_cookie, verify_csrf
from gameplane.kit.problems import Problem, problem_response
from gameplane.web import money
from gameplane.web.cookie import PlayerSession
from gameplane.web.gateway import ApiError, Gateway, Unavailable
from gameplane.web.settings import WebSettings, origin

router = APIRouter(include_in_schema=False)
CSRF = [Depends(verify_csrf)]

COUNTRIES = sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda c: c[1])
CURRENCIES = ("EUR", "GBP", "USD")
LIMIT_PERIODS = {"deposit": ("day", "week", "month"), "loss": ("day", "week", "month"), "session": ("session",)}
# Messages after a redirect (post/redirect/get): a fixed set, so the query string cannot put words on the page.
NOTICES = {
    "registered": "Your account is ready. Sign in to play.",
    "signed-out": "You are signed out.",
    "expired": "Your session has ended. Sign in again.",
    "self-excluded": "You are self-excluded. Your session has ended and you cannot play until the exclusion "
                     "ends. You can still sign in to withdraw your balance.",
    "limit-saved": "Your limit is saved.",
    "limit-removal": "Your limit will be removed after the cooling-off period.",
    "timeout": "Your time-out has started. Play is blocked until it ends.",
    "reality-check": "Your reality-check interval is saved.",
    "withdrawal": "Your withdrawal is requested.",
    "withdrawal-cancelled": "Your withdrawal is cancelled; the money is back in your balance.",
    "opted-in": "You have taken the offer.",
    "kyc-submitted": "Your document is submitted. We check it; this page shows the outcome.",
}
# Identity verification (KYC): the documents players accept (players' KycSubmit) and its states in words.
_DOCUMENT_NAMES = {"id_card": "National identity card"}
KYC_DOCUMENTS = {doc: _DOCUMENT_NAMES.get(doc, doc.replace("_", " ").capitalize()) for doc in get_args(KycDocument)}
KYC_STATES = {"unverified": "not verified yet", "pending": "being checked", "verified": "verified",
              "rejected": "rejected"}


CATALOGUE_TTL_SECONDS = 5.0

# A payment's state as the player reads it (payments' states, gameplane.contracts.payments).
PAYMENT_STATES = {
    "pending": "pending", "succeeded": "succeeded", "failed": "failed", "expired": "expired",
    "held": "on hold", "review": "under review", "approved": "approved, being sent", "processing": "being sent",
    "paid": "paid", "rejected": "rejected", "cancelled": "cancelled",
}


class SignInRequired(Exception):
    def __init__(self, notice: str | None = None) -> None:
        super().__init__(notice)
        self.notice = notice


@dataclass
class Ctx:
    request: Request
    player: PlayerSession | None
    refreshed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> Pages:
        return self.request.app.state.pages  # type: ignore[no-any-return]

    @property
    def settings(self) -> WebSettings:
        return self.request.app.state.settings  # type: ignore[no-any-return]

    @property
    def gw(self) -> Gateway:
        return self.request.app.state.runtime.state["gateway"]  # type: ignore[no-any-return]

    @property
    def client_ip(self) -> str:
        peer = self.request.client.host if self.request.client else None
        return client_ip(peer, self.request.headers.get("x-forwarded-for"), self.settings.forwarded_for_hops)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call without the player's token (sign-up, sign-in, refresh), from the player's address."""
        return await self.gw.call(method, path, client_ip=self.client_ip, **kwargs)

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call as the signed-in player; an answer that says the token is no good signs them out."""
        token = self.player.access_token if self.player else None
        try:
            return await self.gw.call(method, path, token=token, client_ip=self.client_ip, **kwargs)
        except ApiError as exc:
            if exc.status == 401:
                raise SignInRequired("expired") from None
            raise

    def keep(self, response: Response) -> Response:
        if self.refreshed and self.player is not None:
            set_cookie(response, self.pages.session_cookie, self.player.encode(),
                       max_age=self.pages.session_ttl_seconds)
        return response

    def page(self, template: str, status_code: int = 200, **context: Any) -> Response:
        notice = NOTICES.get(self.request.query_params.get("notice", ""))
        return self.keep(self.pages.render(
            self.request, template, status_code=status_code, player=self.player, notice=notice,
            help_links=self.settings.help_links, show=money.show, **self.extra, **context))

    def go(self, url: str) -> Response:
        return self.keep(RedirectResponse(url, status_code=303))


async def visitor(request: Request) -> Ctx:
    """The request's context: the player when a valid session cookie came with it (refreshed
    first when its access token is about to expire)."""
    pages: Pages = request.app.state.pages
    player = PlayerSession.decode(pages.session(request))
    ctx = Ctx(request, player)
    if player is not None and player.due_for_refresh(time.time()):
        try:
            answer = await ctx.call("POST", "/v1/players/token/refresh",
                                       json={"refresh_token": player.refresh_token})
        except ApiError:
            raise SignInRequired("expired") from None
        ctx.player = PlayerSession.from_login(answer, time.time(), jurisdiction=player.jurisdiction,
                                              currency=player.currency)
        ctx.refreshed = True
    return ctx


async def player(ctx: Ctx = Depends(visitor)) -> Ctx:
    if ctx.player is None:
        raise SignInRequired()
    return ctx


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = "/login" + (f"?notice={exc.notice}" if exc.notice else "")
        response = RedirectResponse(target, status_code=303)
        app.state.pages.end_session(response)
        return response

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        # A person's browser gets a page in words; other clients the problem document.
        if "text/html" not in request.headers.get("accept", ""):
            return problem_response(exc, request)
        pages: Pages = app.state.pages
        stale = exc.slug == CSRF_FAILED.slug
        return pages.render(request, "refused.html", status_code=exc.status, player=None, notice=None,
                            help_links=app.state.settings.help_links,
                            heading="This form has expired" if stale else exc.title,
                            reason="Go back, reload the page and send the form again." if stale
                            else (exc.detail or exc.title))

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> Response:
        pages: Pages = app.state.pages
        return pages.render(request, "unavailable.html", status_code=503, player=None, notice=None,
                            help_links=app.state.settings.help_links, what=exc.what)


# ---- account ---------------------------------------------------------------------------------------

@router.get("/")
async def home(ctx: Ctx = Depends(visitor)) -> Response:
    return ctx.go("/lobby" if ctx.player else "/login")


@router.get("/register")
async def register_form(ctx: Ctx = Depends(visitor)) -> Response:
    return ctx.page("register.html", countries=COUNTRIES, currencies=CURRENCIES, form={}, error=None)


@router.post("/register", dependencies=CSRF)
async def register(request: Request, email: str = Form(""), password: str = Form(""),
                   date_of_birth: str = Form(""), country: str = Form(""), currency: str = Form("EUR"),
                   ctx: Ctx = Depends(visitor)) -> Response:
    form = {"email": email, "date_of_birth": date_of_birth, "country": country, "currency": currency}
    try:
        await ctx.call("POST", "/v1/players/register", json={
            "email": email, "password": password, "date_of_birth": date_of_birth, "country": country,
            "currency": currency})
    except ApiError as exc:
        return ctx.page("register.html", status_code=422, countries=COUNTRIES, currencies=CURRENCIES,
                        form=form, error=register_error(exc))
    return ctx.go("/login?notice=registered")


def register_error(exc: ApiError) -> str:
    """The refusals a person can fix, in their words."""
    if exc.slug == "underage":
        age = exc.extensions.get("minimum_age", 18)
        return f"You must be at least {age} years old to play here."
    if exc.slug == "email-taken":
        return "An account with this email already exists. Sign in instead."
    if exc.slug == "weak-password":
        return f"Choose a stronger password: {exc.detail or 'longer, and not a common one'}."
    return exc.words


@router.get("/login")
async def login_form(ctx: Ctx = Depends(visitor)) -> Response:
    return ctx.page("login.html", error=None, email="")


@router.post("/login", dependencies=CSRF)
async def login(email: str = Form(""), password: str = Form(""), ctx: Ctx = Depends(visitor)) -> Response:
    try:
        answer = await ctx.call("POST", "/v1/players/login", json={"email": email, "password": password})
    except ApiError as exc:
        words = "The email or password is wrong." if exc.status in (401, 422) else exc.words
        if exc.slug == "account-locked":
            words = f"Your account is locked for a while after too many attempts. {exc.detail or ''}".strip()
        return ctx.page("login.html", status_code=exc.status if 400 <= exc.status < 500 else 422, error=words,
                        email=email)
    prot = await ctx.call("GET", "/v1/players/me/protection", token=answer["access_token"])
    session = PlayerSession.from_login(answer, time.time(), jurisdiction=prot["jurisdiction"],
                                       currency=prot["currency"])
    response = RedirectResponse("/lobby", status_code=303)
    ctx.pages.start_session(response, session.encode())
    return response


@router.post("/logout", dependencies=CSRF)
async def logout(ctx: Ctx = Depends(visitor)) -> Response:
    if ctx.player is not None:
        try:
            await ctx.call("POST", "/v1/players/logout", json={"refresh_token": ctx.player.refresh_token})
        except (ApiError, Unavailable):
            pass  # the cookie goes anyway; the refresh token expires on its own
    response = RedirectResponse("/login?notice=signed-out", status_code=303)
    ctx.pages.end_session(response)
    return response


# ---- lobby and play --------------------------------------------------------------------------------

async def protection(ctx: Ctx) -> dict[str, Any]:
    return dict(await ctx.api("GET", "/v1/players/me/protection"))


def play_block(prot: dict[str, Any], now: datetime) -> str | None:
    """Why play is blocked now, in words (None: it is not)."""
    for key, what in (("self_excluded_until", "You are self-excluded"), ("timeout_until", "You are on a time-out")):
        until = prot.get(key)
        if until and datetime.fromisoformat(until) > now:
            return f"{what} until {datetime.fromisoformat(until):%d %B %Y, %H:%M} UTC: you cannot play or deposit."
    return None


async def balance_of(ctx: Ctx, currency: str | None = None) -> dict[str, Any] | None:
    answer = await ctx.api("GET", "/v1/wallet/balances")
    items = answer.get("balances", [])
    chosen = next((b for b in items if currency is None or b["currency"] == currency), None)
    if chosen is None:
        return {"currency": currency, "cash": 0, "bonus": 0} if currency else None
    return dict(chosen)


def filter_games(games: list[dict[str, Any]], q: str, provider: str, category: str) -> list[dict[str, Any]]:
    needle = q.strip().casefold()
    return [g for g in games
            if (not needle or needle in g["title"].casefold() or needle in g["game_id"].casefold())
            and (not provider or g["provider"] == provider) and (not category or g["category"] == category)]


async def catalogue(ctx: Ctx, jurisdiction: str) -> list[dict[str, Any]]:
    """The games enabled in a jurisdiction (the same rule sessions applies at launch). The same
    public list for every player there: kept CATALOGUE_TTL_SECONDS rather than asked for on
    every lobby page."""
    cache: dict[str, tuple[float, list[dict[str, Any]]]] = ctx.request.app.state.catalogue
    now = time.monotonic()
    hit = cache.get(jurisdiction)
    if hit is not None and now - hit[0] < CATALOGUE_TTL_SECONDS:
        return hit[1]
    games = list(await ctx.call("GET", "/v1/games", params={"jurisdiction": jurisdiction}))
    cache[jurisdiction] = (now, games)
    return games


@router.get("/lobby")
async def lobby(q: str = "", provider: str = "", category: str = "", ctx: Ctx = Depends(player)) -> Response:
    assert ctx.player is not None
    who = ctx.player
    if not (who.jurisdiction and who.currency) or not who.play:
        # A session from before sign-in kept them, or play is blocked: ask players (and say until when).
        prot: dict[str, Any] | None = await protection(ctx)
        jurisdiction, currency = prot["jurisdiction"], prot["currency"]
    else:
        prot, jurisdiction, currency = None, who.jurisdiction, who.currency
    wallet, games = await asyncio.gather(ctx.api("GET", "/v1/wallet/balances"), catalogue(ctx, jurisdiction))
    shown = filter_games(games, q[:100], provider, category)
    balance = next((b for b in wallet["balances"] if b["currency"] == currency),
                   {"currency": currency, "cash": 0, "bonus": 0})
    blocked = play_block(prot, datetime.now(UTC)) if prot is not None else None
    return ctx.page("lobby.html", games=shown, all_count=len(games), q=q, provider=provider, category=category,
                    providers=sorted({g["provider"] for g in games}), categories=sorted({g["category"] for g in games}),
                    blocked=blocked, balance=balance)


@router.post("/games/{game_id}/launch", dependencies=CSRF)
async def launch(game_id: str, ctx: Ctx = Depends(player)) -> Response:
    try:
        session = await ctx.api("POST", "/v1/sessions", json={"game_id": game_id})
    except ApiError as exc:
        prot = await protection(ctx)
        return ctx.page("refused.html", status_code=exc.status if 400 <= exc.status < 500 else 422,
                        heading="You cannot play this game now", reason=launch_refusal(exc, prot))
    return ctx.go(f"/play/{session['session_id']}")


def launch_refusal(exc: ApiError, prot: dict[str, Any]) -> str:
    blocked = play_block(prot, datetime.now(UTC))
    if exc.slug == "play-blocked" and blocked:
        return blocked
    return exc.words


@router.get("/play/{session_id}")
async def play(session_id: str, ctx: Ctx = Depends(player)) -> Response:
    assert ctx.player is not None
    # One round of calls (the click-to-first-spin path): the session, the interval of reality checks
    # and the balance at once; the title from the lobby's catalogue.
    session, prot, balance = await asyncio.gather(
        ctx.api("GET", f"/v1/sessions/{quote(session_id, safe='')}"), protection(ctx),
        balance_of(ctx, ctx.player.currency or None))
    if session["status"] != "active":
        return ctx.page("refused.html", status_code=410, heading="This game session has ended",
                        reason=f"It ended ({(session.get('end_reason') or 'closed').replace('_', ' ')}). "
                               "Open the game again from the lobby.")
    if balance is None or balance["currency"] != session["currency"]:
        balance = await balance_of(ctx, session["currency"])
    games = await catalogue(ctx, prot["jurisdiction"])
    title = next((g["title"] for g in games if g["game_id"] == session["game_id"]), session["game_id"])
    studio = ctx.settings.game_urls.get(session["provider"])
    if not studio:
        # A provider whose game pages players cannot reach from here: say so rather than frame nothing.
        return ctx.page("refused.html", status_code=503, heading=f"{title} cannot be opened on this site",
                        reason="Its studio has no address for players' browsers configured here. "
                               "Choose another game from the lobby.")
    game_url = f"{studio.rstrip('/')}/play?" + urlencode(
        {"token": session["token"], "game": session["game_id"], "parent": ctx.settings.public_url.rstrip("/")})
    return ctx.page("play.html", session=session, game_url=game_url, balance=balance, title=title,
                    rgs_origin=origin(studio), reality_minutes=prot.get("reality_check_minutes"))


@router.post("/play/{session_id}/end", dependencies=CSRF)
async def end_play(session_id: str, ctx: Ctx = Depends(player)) -> Response:
    try:
        await ctx.api("POST", f"/v1/sessions/{quote(session_id, safe='')}/end")
    except ApiError:
        pass  # ended already, or not this player's: either way there is nothing to stop
    return ctx.go("/lobby")


@router.get("/balance")
async def balance(currency: str | None = None, ctx: Ctx = Depends(player)) -> Response:
    """The balance as the wallet holds it now (what the page shows after each round: never the
    number a game page posted)."""
    b = await balance_of(ctx, currency.upper()[:3] if currency else None)
    if b is None:
        return ctx.keep(JSONResponse({"currency": None, "cash": 0, "bonus": 0, "total": 0, "display": "—"}))
    total = int(b["cash"]) + int(b["bonus"])
    return ctx.keep(JSONResponse({"currency": b["currency"], "cash": b["cash"], "bonus": b["bonus"], "total": total,
                                  "display": money.show(total, b["currency"])}))


# The wallet's amounts are unsigned: a bet takes money, a win and a bet's rollback give it.
PLAY_SIGNS = {"bet": -1, "win": 1, "rollback": 1}


def net_position(transactions: list[dict[str, Any]], since: datetime) -> int:
    """Wins minus stakes of the play transactions at or after `since`."""
    return sum(PLAY_SIGNS[t["kind"]] * int(t["amount"]) for t in transactions
               if t["kind"] in PLAY_SIGNS and datetime.fromisoformat(t["created_at"]) >= since)


@router.get("/play/{session_id}/reality")
async def reality(session_id: str, ctx: Ctx = Depends(player)) -> Response:
    """Session time and net position (wins minus stakes of this session's rounds) for the
    reality-check prompt."""
    session = await ctx.api("GET", f"/v1/sessions/{quote(session_id, safe='')}")
    started = datetime.fromisoformat(session["started_at"])
    history = await ctx.api("GET", "/v1/wallet/transactions", params={"currency": session["currency"], "limit": 200})
    net = net_position(history["items"], started)
    minutes = int((datetime.now(UTC) - started).total_seconds() // 60)
    return ctx.keep(JSONResponse({"minutes": minutes, "net": net, "net_display": money.show(net, session["currency"])}))


# ---- cashier ---------------------------------------------------------------------------------------

async def cashier_page(ctx: Ctx, status_code: int = 200, error: str | None = None) -> Response:
    prot, wallet = await asyncio.gather(protection(ctx), ctx.api("GET", "/v1/wallet/balances"))
    currency = prot["currency"]
    balance = next((b for b in wallet["balances"] if b["currency"] == currency),
                   {"currency": currency, "cash": 0, "bonus": 0})
    payments: list[dict[str, Any]] | None = None
    try:
        payments = list((await ctx.api("GET", "/v1/payments"))["items"])
    except Unavailable:
        payments = None  # the page says the cashier is unavailable
    methods = sorted({p["method_fingerprint"] for p in payments or []
                      if p["kind"] == "deposit" and p["state"] == "succeeded" and p.get("method_fingerprint")})
    deposit_limits = [lim for lim in prot["limits"] if lim["kind"] == "deposit"]
    return ctx.page("cashier.html", status_code=status_code, error=error, balance=balance, currency=currency,
                    payments=payments, methods=methods, deposit_limits=deposit_limits,
                    blocked=play_block(prot, datetime.now(UTC)), psps=("simpsp", "cardgw"),
                    states=PAYMENT_STATES)


@router.get("/cashier")
async def cashier(ctx: Ctx = Depends(player)) -> Response:
    return await cashier_page(ctx)


def deposit_refusal(exc: ApiError, currency: str) -> str:
    if exc.slug == "deposit-not-allowed" and exc.extensions.get("reason") == "deposit-limit":
        remaining = exc.extensions.get("remaining")
        if not isinstance(remaining, int):
            return "Refused: this deposit is over your deposit limit."
        if remaining <= 0:
            return "Refused: you have reached your deposit limit for this period."
        return ("Refused: this deposit is over your deposit limit; you can deposit up to "
                f"{money.show(remaining, currency)} more in this period.")
    if exc.slug == "play-blocked":
        return "Refused: deposits are blocked during a time-out or self-exclusion."
    return f"Refused: {exc.words}"


@router.post("/cashier/deposit", dependencies=CSRF)
async def deposit(amount: str = Form(""), psp: str = Form("simpsp"), currency: str = Form("EUR"),
                  ctx: Ctx = Depends(player)) -> Response:
    try:
        minor = money.parse(amount, currency)
    except money.BadAmount as exc:
        return await cashier_page(ctx, 422, f"Deposit: {exc}")
    try:
        created = await ctx.api("POST", "/v1/payments/deposits",
                                json={"amount": minor, "currency": currency, "psp": psp})
    except ApiError as exc:
        return await cashier_page(ctx, 422 if exc.status < 500 else 503, deposit_refusal(exc, currency))
    if not created.get("redirect_url"):
        return await cashier_page(ctx, 503, "The payment provider did not open a payment page; try again.")
    return ctx.go(str(created["redirect_url"]))  # the PSP's hosted page; it sends the player back


async def my_payment(ctx: Ctx, reference: str) -> dict[str, Any] | None:
    """One of the player's latest payments, as payments knows it (never as a URL says it is)."""
    items = (await ctx.api("GET", "/v1/payments"))["items"]
    return next((p for p in items if p["reference"] == reference), None)


@router.get("/cashier/return")
async def deposit_return(reference: str = "", status: str = "", ctx: Ctx = Depends(player)) -> Response:
    """Where the PSP's hosted page sends the player back (payments' return URL). The payment's
    state is read from payments, never taken from the query string."""
    return ctx.page("deposit_return.html", payment=await my_payment(ctx, reference))


@router.get("/cashier/payments/{reference}")
async def payment_state(reference: str, ctx: Ctx = Depends(player)) -> Response:
    found = await my_payment(ctx, reference)
    if found is None:
        return ctx.keep(JSONResponse({"state": None}, status_code=404))
    return ctx.keep(JSONResponse({"state": found["state"], "credited": found["credited"]}))


@router.post("/cashier/withdraw", dependencies=CSRF)
async def withdraw(amount: str = Form(""), method: str = Form(""), currency: str = Form("EUR"),
                   ctx: Ctx = Depends(player)) -> Response:
    try:
        minor = money.parse(amount, currency)
    except money.BadAmount as exc:
        return await cashier_page(ctx, 422, f"Withdrawal: {exc}")
    try:
        await ctx.api("POST", "/v1/payments/withdrawals",
                      json={"amount": minor, "currency": currency, "method_fingerprint": method})
    except ApiError as exc:
        return await cashier_page(ctx, 422 if exc.status < 500 else 503, f"Withdrawal refused: {exc.words}")
    return ctx.go("/cashier?notice=withdrawal")


@router.post("/cashier/withdrawals/{payment_id}/cancel", dependencies=CSRF)
async def cancel_withdrawal(payment_id: str, ctx: Ctx = Depends(player)) -> Response:
    try:
        await ctx.api("POST", f"/v1/payments/withdrawals/{quote(payment_id, safe='')}/cancel")
    except ApiError as exc:
        return await cashier_page(ctx, 422, f"The withdrawal cannot be cancelled: {exc.words}")
    return ctx.go("/cashier?notice=withdrawal-cancelled")


async def verify_page(ctx: Ctx, status_code: int = 200, error: str | None = None) -> Response:
    kyc = await ctx.api("GET", "/v1/players/me/kyc")
    return ctx.page("verify.html", status_code=status_code, error=error, kyc=kyc, documents=KYC_DOCUMENTS,
                    states=KYC_STATES)


@router.get("/verify")
async def verify(ctx: Ctx = Depends(player)) -> Response:
    return await verify_page(ctx)


@router.post("/verify", dependencies=CSRF)
async def submit_verification(document_type: str = Form(""), document_reference: str = Form(""),
                              ctx: Ctx = Depends(player)) -> Response:
    """Withdrawals (and deposits past the AML threshold) need a verified identity: the player names
    the document; staff decide in the back office."""
    reference = document_reference.strip()
    if document_type not in KYC_DOCUMENTS:
        return await verify_page(ctx, 422, "Choose the kind of document.")
    if not reference or len(reference) > 200:
        return await verify_page(ctx, 422, "Give the document's reference (at most 200 characters).")
    try:
        await ctx.api("POST", "/v1/players/me/kyc", json={"document_type": document_type,
                                                          "document_reference": reference})
    except ApiError as exc:
        return await verify_page(ctx, 422 if exc.status < 500 else 503, f"Verification refused: {exc.words}")
    return ctx.go("/verify?notice=kyc-submitted")


@router.get("/history")
async def history(cursor: str = "", ctx: Ctx = Depends(player)) -> Response:
    page = await ctx.api("GET", "/v1/wallet/transactions", params={"cursor": cursor[:100], "limit": 50})
    return ctx.page("history.html", items=page["items"], next_cursor=page.get("next_cursor"))


# ---- bonuses ---------------------------------------------------------------------------------------

@router.get("/bonuses")
async def bonuses(ctx: Ctx = Depends(player), error: str | None = None, status_code: int = 200) -> Response:
    try:
        offers, grants = await asyncio.gather(ctx.api("GET", "/v1/bonus/offers"), ctx.api("GET", "/v1/bonus/grants"))
    except Unavailable:
        return ctx.page("bonuses.html", unavailable=True, offers=[], grants=[], error=None)
    names = {o["offer_id"]: o["terms"]["name"] for o in offers}
    return ctx.page("bonuses.html", status_code=status_code, unavailable=False, offers=offers, grants=grants,
                    error=error, names=names)


@router.post("/bonuses/{offer_id}/opt-in", dependencies=CSRF)
async def opt_in(offer_id: str, ctx: Ctx = Depends(player)) -> Response:
    try:
        await ctx.api("POST", f"/v1/bonus/offers/{quote(offer_id, safe='')}/opt-in")
    except ApiError as exc:
        return await bonuses(ctx, error=f"The offer cannot be taken: {exc.words}", status_code=422)
    return ctx.go("/bonuses?notice=opted-in")


# ---- safer gambling --------------------------------------------------------------------------------

async def safer_page(ctx: Ctx, status_code: int = 200, error: str | None = None) -> Response:
    prot = await protection(ctx)
    hours = prot["cooling_off_seconds"] / 3600
    try:
        intervals = profile(prot["jurisdiction"]).reality_check_intervals_minutes
    except (KeyError, LookupError, ValueError):
        intervals = ()
    return ctx.page("safer.html", status_code=status_code, error=error, prot=prot, periods=LIMIT_PERIODS,
                    cooling_off=f"{hours:g} hours", blocked=play_block(prot, datetime.now(UTC)),
                    intervals=intervals)


@router.get("/safer-gambling")
async def safer(ctx: Ctx = Depends(player)) -> Response:
    return await safer_page(ctx)


@router.post("/safer-gambling/limits", dependencies=CSRF)
async def set_limit(kind: str = Form(""), period: str = Form(""), value: str = Form(""),
                    currency: str = Form("EUR"), ctx: Ctx = Depends(player)) -> Response:
    if period not in LIMIT_PERIODS.get(kind, ()):
        return await safer_page(ctx, 422, "Choose a limit and a period it has.")
    try:
        amount = int(value) if kind == "session" else money.parse(value, currency)
        if amount <= 0:
            raise ValueError
    except (ValueError, money.BadAmount) as exc:
        return await safer_page(ctx, 422, f"Limit: {exc}" if str(exc) else "Limit: enter a number above zero.")
    try:
        await ctx.api("PUT", "/v1/players/me/limits", json={"kind": kind, "period": period, "value": amount})
    except ApiError as exc:
        return await safer_page(ctx, 422, f"The limit was not saved: {exc.words}")
    return ctx.go("/safer-gambling?notice=limit-saved")


@router.post("/safer-gambling/limits/remove", dependencies=CSRF)
async def remove_limit(kind: str = Form(""), period: str = Form(""), ctx: Ctx = Depends(player)) -> Response:
    if period not in LIMIT_PERIODS.get(kind, ()):
        return await safer_page(ctx, 422, "Choose a limit and a period it has.")
    try:
        await ctx.api("DELETE", f"/v1/players/me/limits/{kind}/{period}")
    except ApiError as exc:
        return await safer_page(ctx, 422, f"The limit was not removed: {exc.words}")
    return ctx.go("/safer-gambling?notice=limit-removal")


@router.post("/safer-gambling/timeout", dependencies=CSRF)
async def timeout(days: int = Form(0), ctx: Ctx = Depends(player)) -> Response:
    try:
        await ctx.api("POST", "/v1/players/me/timeout", json={"days": days})
    except ApiError as exc:
        return await safer_page(ctx, 422, f"The time-out was not started: {exc.words}")
    return await end_everything(ctx, "timeout")


@router.post("/safer-gambling/self-exclusion", dependencies=CSRF)
async def self_exclude(months: int = Form(0), confirm: str = Form(""), ctx: Ctx = Depends(player)) -> Response:
    if confirm != "yes":
        return await safer_page(ctx, 422, "Tick the box to confirm that you want to self-exclude.")
    try:
        await ctx.api("POST", "/v1/players/me/self-exclusion", json={"months": months})
    except ApiError as exc:
        return await safer_page(ctx, 422, f"The self-exclusion was not started: {exc.words}")
    return await end_everything(ctx, "self-excluded")


async def end_everything(ctx: Ctx, notice: str) -> Response:
    """A break ends the site session (its token still says play=true until it expires) and every
    open game session; the player signs in again to a session that cannot play."""
    assert ctx.player is not None
    try:
        for s in await ctx.api("GET", "/v1/sessions"):
            if s["status"] == "active":
                await ctx.api("POST", f"/v1/sessions/{s['session_id']}/end")
    except (ApiError, Unavailable):
        pass  # sessions refuses bets of a protected player by itself; ending them is tidiness
    try:
        await ctx.call("POST", "/v1/players/logout", json={"refresh_token": ctx.player.refresh_token})
    except (ApiError, Unavailable):
        pass
    response = RedirectResponse(f"/login?notice={notice}", status_code=303)
    ctx.pages.end_session(response)
    return response


@router.post("/safer-gambling/reality-check", dependencies=CSRF)
async def reality_check(minutes: str = Form(""), ctx: Ctx = Depends(player)) -> Response:
    try:
        value = int(minutes) if minutes.strip() else None
    except ValueError:
        return await safer_page(ctx, 422, "Reality check: enter a number of minutes.")
    try:
        await ctx.api("PUT", "/v1/players/me/reality-check", json={"minutes": value})
    except ApiError as exc:
        return await safer_page(ctx, 422, f"The reality check was not saved: {exc.words}")
    return ctx.go("/safer-gambling?notice=reality-check")


@router.get("/help")
async def help_page(ctx: Ctx = Depends(visitor)) -> Response:
    return ctx.page("help.html")

