"""The PSP simulator: an outside payment provider speaking two dialects to the platform.

Merchant APIs (what payments' adapters call), per dialect:
  simpsp  (X-Psp-Api-Key):          POST /simpsp/sessions, POST /simpsp/payouts, GET /simpsp/reports/settlement
  cardgw  (Authorization: Bearer):  POST /cardgw/v1/payment_intents, POST /cardgw/v1/payouts,
                                    GET /cardgw/v1/reports/settlement   (form- or JSON-encoded)
Hosted page (the player's browser):  GET /pay/{psp_reference}, POST /pay/{psp_reference} (form)
Control API (tests, drills; either dialect's API key as a bearer token): /control/...
Webhooks go to each dialect's URL (GP_PSP_<DIALECT>_WEBHOOK_URL, default the platform's
/webhooks/payments/<dialect>), see webhooks.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from gameplane.kit.app import Runtime, create_app
from gameplane.kit.money import CurrencyError, validate_currency
from gameplane.kit.problems import Problem
from gameplane.simulators.psp import dialects, hosted
from gameplane.simulators.psp.settings import PspSettings
from gameplane.simulators.psp.store import (
    DECLINING_CARDS,
    Conflict,
    Event,
    Payment,
    Payout,
    Store,
    card_method,
    ewallet_method,
    luhn_ok,
    now,
)
from gameplane.simulators.psp.webhooks import Dispatcher, Policy

router = APIRouter()
log = logging.getLogger("gameplane.psp")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _settings(request: Request) -> PspSettings:
    return _rt(request).settings  # type: ignore[return-value]


def _store(request: Request) -> Store:
    return _rt(request).state["store"]  # type: ignore[no-any-return]


def _dispatcher(request: Request) -> Dispatcher:
    return _rt(request).state["dispatcher"]  # type: ignore[no-any-return]


def _emit(request: Request, *events: Event) -> None:
    for ev in events:
        _dispatcher(request).enqueue(ev)


def _key_ok(given: str | None, expected: str | None) -> bool:
    return bool(given and expected and hmac.compare_digest(given.encode(), expected.encode()))


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _enabled(request: Request, dialect: str) -> None:
    if dialect not in _settings(request).enabled():
        raise Problem(404, "dialect-disabled", "This PSP dialect is not configured", dialect)


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(422, "invalid-date", "date must be YYYY-MM-DD", value) from None


def _currency(value: Any) -> str:
    try:
        return validate_currency(str(value))
    except CurrencyError as exc:
        raise Problem(422, "invalid-currency", "Unsupported currency", str(exc)) from None


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


# -- simpsp -------------------------------------------------------------------------------------

class SimpspInstrument(BaseModel):
    type: Literal["card", "ewallet", "bank"]
    fingerprint: str = Field(min_length=1)
    label: str = ""


class SimpspSessionIn(BaseModel):
    reference: str = Field(min_length=1, max_length=64)
    player_id: str = Field(min_length=1)
    amount_minor: int = Field(gt=0)
    currency: str
    return_url: str = Field(min_length=1)
    expires_at: datetime | None = None


class SimpspPayoutIn(BaseModel):
    reference: str = Field(min_length=1, max_length=64)
    player_id: str = Field(min_length=1)
    amount_minor: int = Field(gt=0)
    currency: str
    instrument: SimpspInstrument


def _simpsp_auth(request: Request) -> None:
    _enabled(request, "simpsp")
    if not _key_ok(request.headers.get("x-psp-api-key"), _settings(request).api_key("simpsp")):
        raise Problem(401, "unauthenticated", "A valid X-Psp-Api-Key is required")


def _hosted_url(request: Request, p: Payment) -> str:
    return f"{_settings(request).base_url()}/pay/{p.psp_reference}"


def _expiry(request: Request, given: datetime | None) -> datetime:
    if given is None:
        return now() + timedelta(seconds=_settings(request).session_ttl_seconds)
    if given.tzinfo is None:
        raise Problem(422, "invalid-expiry", "expires_at needs a time zone")
    return given.astimezone(UTC)


def _simpsp_session(request: Request, p: Payment) -> dict[str, Any]:
    return {"session_id": p.psp_reference, "reference": p.reference, "status": p.status,
            "amount_minor": p.amount, "currency": p.currency, "hosted_url": _hosted_url(request, p),
            "expires_at": p.expires_at.isoformat().replace("+00:00", "Z")}


@router.post("/simpsp/sessions", tags=["simpsp"])
async def simpsp_create_session(body: SimpspSessionIn, request: Request) -> JSONResponse:
    _simpsp_auth(request)
    try:
        p, created = _store(request).create_payment("simpsp", body.reference, body.player_id, body.amount_minor,
                                                    _currency(body.currency), body.return_url,
                                                    _expiry(request, body.expires_at))
    except Conflict as exc:
        raise Problem(409, "reference-reused", "Reference already used for other terms", str(exc)) from None
    return JSONResponse(_simpsp_session(request, p), status_code=201 if created else 200)


@router.get("/simpsp/sessions/{session_id}", tags=["simpsp"])
async def simpsp_get_session(session_id: str, request: Request) -> dict[str, Any]:
    _simpsp_auth(request)
    p = _store(request).payments.get(session_id)
    if p is None or p.dialect != "simpsp":
        raise Problem(404, "no-such-session", "No such session", session_id)
    return _simpsp_session(request, p)


@router.post("/simpsp/payouts", tags=["simpsp"], status_code=202)
async def simpsp_create_payout(body: SimpspPayoutIn, request: Request) -> JSONResponse:
    _simpsp_auth(request)
    po = _new_payout(request, "simpsp", body.reference, body.player_id, body.amount_minor, body.currency,
                     body.instrument.fingerprint)
    return JSONResponse({"payout_id": po.psp_reference, "reference": po.reference, "status": po.status},
                        status_code=202)


@router.get("/simpsp/reports/settlement", tags=["simpsp"], response_class=PlainTextResponse)
async def simpsp_report(request: Request, day: str = Query(alias="date")) -> PlainTextResponse:
    _simpsp_auth(request)
    rows = _store(request).report("simpsp", _parse_day(day))
    return PlainTextResponse(dialects.settlement_csv("simpsp", rows), media_type="text/csv")


def _new_payout(request: Request, dialect: str, reference: str, player_id: str, amount: int, currency: Any,
                fingerprint: str) -> Payout:
    delay = _settings(request).payout_delay_seconds
    due = None if delay is None else now() + timedelta(seconds=delay)
    try:
        po, _ = _store(request).create_payout(dialect, reference, player_id, amount, _currency(currency),
                                              fingerprint, due)
    except Conflict as exc:
        raise Problem(409, "reference-reused", "Reference already used for other terms", str(exc)) from None
    except LookupError as exc:
        raise Problem(422, "unknown-instrument", "Payouts go to an instrument that has paid here",
                      str(exc)) from None
    return po


# -- cardgw -------------------------------------------------------------------------------------

class CardgwError(Exception):
    def __init__(self, status: int, code: str, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.kind = status, code, message, kind


def _cardgw_error(exc: CardgwError) -> JSONResponse:
    return JSONResponse({"error": {"type": exc.kind, "code": exc.code, "message": exc.message}},
                        status_code=exc.status)


async def _cardgw_params(request: Request) -> dict[str, Any]:
    """Form (`metadata[reference]=..`) or JSON, as the gateway's clients send either."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise CardgwError(400, "parameter_invalid", "body is not JSON") from None
        if not isinstance(data, dict):
            raise CardgwError(400, "parameter_invalid", "body must be an object")
        return data
    out: dict[str, Any] = {}
    for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        if "[" in key and key.endswith("]"):
            outer, inner = key[:-1].split("[", 1)
            out.setdefault(outer, {})[inner] = value
        else:
            out[key] = value
    return out


def _cardgw_auth(request: Request) -> None:
    if "cardgw" not in _settings(request).enabled():
        raise CardgwError(404, "resource_missing", "cardgw is not configured")
    if not _key_ok(_bearer(request), _settings(request).api_key("cardgw")):
        raise CardgwError(401, "api_key_invalid", "Invalid API key provided", "authentication_error")


def _int(params: dict[str, Any], name: str) -> int:
    try:
        value = int(str(params[name]))
    except (KeyError, ValueError):
        raise CardgwError(400, "parameter_missing" if name not in params else "parameter_invalid",
                          f"{name} must be a positive integer") from None
    if value <= 0:
        raise CardgwError(400, "parameter_invalid", f"{name} must be a positive integer")
    return value


def _str(params: dict[str, Any], name: str, sub: str | None = None) -> str:
    value = params.get(name)
    if sub is not None:
        value = value.get(sub) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        raise CardgwError(400, "parameter_missing", f"{name}{f'[{sub}]' if sub else ''} is required")
    return value


def _cardgw_currency(params: dict[str, Any]) -> str:
    try:
        return validate_currency(_str(params, "currency"))
    except CurrencyError:
        raise CardgwError(400, "currency_invalid", f"unsupported currency {params.get('currency')}") from None


@router.post("/cardgw/v1/payment_intents", tags=["cardgw"])
async def cardgw_create_intent(request: Request) -> JSONResponse:
    try:
        _cardgw_auth(request)
        params = await _cardgw_params(request)
        amount, currency = _int(params, "amount"), _cardgw_currency(params)
        reference = request.headers.get("idempotency-key") or _str(params, "metadata", "reference")
        if reference != _str(params, "metadata", "reference"):
            raise CardgwError(400, "idempotency_key_mismatch", "Idempotency-Key must equal metadata[reference]")
        expires = params.get("expires_at")
        try:
            expires_at = datetime.fromtimestamp(int(expires), UTC) if expires not in (None, "") else None
        except (TypeError, ValueError):
            raise CardgwError(400, "parameter_invalid", "expires_at must be a unix timestamp") from None
        try:
            p, _ = _store(request).create_payment(
                "cardgw", reference, _str(params, "metadata", "player_id"), amount, currency,
                _str(params, "return_url"), _expiry(request, expires_at))
        except Conflict as exc:
            raise CardgwError(409, "idempotency_error", str(exc)) from None
        return JSONResponse(dialects.cardgw_intent(p, _hosted_url(request, p)), status_code=200)
    except CardgwError as exc:
        return _cardgw_error(exc)


@router.get("/cardgw/v1/payment_intents/{intent_id}", tags=["cardgw"])
async def cardgw_get_intent(intent_id: str, request: Request) -> JSONResponse:
    try:
        _cardgw_auth(request)
        p = _store(request).payments.get(intent_id)
        if p is None or p.dialect != "cardgw":
            raise CardgwError(404, "resource_missing", f"No such payment_intent: {intent_id}")
        return JSONResponse(dialects.cardgw_intent(p, _hosted_url(request, p)))
    except CardgwError as exc:
        return _cardgw_error(exc)


@router.post("/cardgw/v1/payouts", tags=["cardgw"])
async def cardgw_create_payout(request: Request) -> JSONResponse:
    try:
        _cardgw_auth(request)
        params = await _cardgw_params(request)
        reference = request.headers.get("idempotency-key") or _str(params, "metadata", "reference")
        try:
            po = _new_payout(request, "cardgw", reference, _str(params, "metadata", "player_id"),
                             _int(params, "amount"), _cardgw_currency(params), _str(params, "destination"))
        except Problem as exc:
            raise CardgwError(exc.status, exc.slug.replace("-", "_"), exc.detail or exc.title) from None
        return JSONResponse(dialects.cardgw_payout(po))
    except CardgwError as exc:
        return _cardgw_error(exc)


@router.get("/cardgw/v1/reports/settlement", tags=["cardgw"], response_model=None)
async def cardgw_report(request: Request, day: str = Query(alias="date")) -> Response:
    try:
        _cardgw_auth(request)
    except CardgwError as exc:
        return _cardgw_error(exc)
    rows = _store(request).report("cardgw", _parse_day(day))
    return PlainTextResponse(dialects.settlement_csv("cardgw", rows), media_type="text/csv")


# -- the hosted page ----------------------------------------------------------------------------

def _payment(request: Request, psp_reference: str) -> Payment:
    p = _store(request).payments.get(psp_reference)
    if p is None:
        raise Problem(404, "no-such-payment", "No such payment", psp_reference)
    return p


@router.get("/pay/{psp_reference}", tags=["hosted page"], response_class=HTMLResponse)
async def hosted_page(psp_reference: str, request: Request) -> HTMLResponse:
    p = _payment(request, psp_reference)
    return HTMLResponse(hosted.page(p), status_code=200 if p.status == "open" else 409)


@router.post("/pay/{psp_reference}", tags=["hosted page"], response_model=None)
async def hosted_submit(psp_reference: str, request: Request) -> Response:
    p = _payment(request, psp_reference)
    if p.status != "open":
        return HTMLResponse(hosted.page(p), status_code=409)
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    store = _store(request)
    if form.get("action") == "cancel":
        _emit(request, store.fail(p, "cancelled"))
    elif form.get("action") == "pay":
        if form.get("method", "card") == "ewallet":
            account = form.get("wallet_account", "").strip()
            if "@" not in account:
                return HTMLResponse(hosted.page(p, error="Enter your e-wallet account"), status_code=422)
            _emit(request, store.pay(p, ewallet_method(p.dialect, account)))
        else:
            number = form.get("card_number", "").replace(" ", "").replace("-", "")
            if not luhn_ok(number):
                return HTMLResponse(hosted.page(p, error="That card number is not valid"), status_code=422)
            method = card_method(p.dialect, number)
            if number in DECLINING_CARDS:
                _emit(request, store.fail(p, DECLINING_CARDS[number], method))
            else:
                _emit(request, store.pay(p, method))
    else:
        return HTMLResponse(hosted.page(p, error="Choose pay or cancel"), status_code=422)
    status = "succeeded" if p.status == "succeeded" else "failed"
    return RedirectResponse(_with_query(p.return_url, psp_reference=p.psp_reference, status=status),
                            status_code=303)


# -- control API (tests and drills) -------------------------------------------------------------

def _control(request: Request) -> None:
    s = _settings(request)
    given = _bearer(request)
    if not any(_key_ok(given, s.api_key(d)) for d in s.enabled()):
        raise Problem(401, "unauthenticated", "The control API takes a dialect's API key as a bearer token")


class CardIn(BaseModel):
    card_number: str = "4242424242424242"


class AdjustIn(BaseModel):
    psp_reference: str = Field(description="the payment's")
    amount: int | None = Field(default=None, gt=0, description="default: what is left of the payment")
    reason: str = "fraudulent"


class PayoutOutcome(BaseModel):
    outcome: Literal["paid", "failed"]
    reason: str | None = None


class DeliveryPolicyIn(BaseModel):
    duplicate_ratio: float | None = Field(default=None, ge=0, le=1)
    max_copies: int | None = Field(default=None, ge=1, le=10)
    reorder_ratio: float | None = Field(default=None, ge=0, le=1)
    reorder_delay_seconds: float | None = Field(default=None, ge=0)
    paused: bool | None = None
    seed: int | None = None


def _conflict(exc: Conflict) -> Problem:
    return Problem(409, "wrong-state", "Not possible in this state", str(exc))


@router.post("/control/payments/{psp_reference}/expire", tags=["control"])
async def control_expire(psp_reference: str, request: Request) -> dict[str, Any]:
    _control(request)
    p = _payment(request, psp_reference)
    try:
        _emit(request, _store(request).expire(p))
    except Conflict as exc:
        raise _conflict(exc) from None
    return {"psp_reference": p.psp_reference, "status": p.status}


@router.post("/control/payments/{psp_reference}/late-success", tags=["control"])
async def control_late_success(psp_reference: str, request: Request, body: CardIn | None = None) -> dict[str, Any]:
    """The money arrives after all (a bank transfer after the session expired, a delayed capture)."""
    _control(request)
    p = _payment(request, psp_reference)
    number = (body or CardIn()).card_number
    try:
        _emit(request, _store(request).pay(p, card_method(p.dialect, number), late=True))
    except Conflict as exc:
        raise _conflict(exc) from None
    return {"psp_reference": p.psp_reference, "status": p.status}


@router.post("/control/payouts/{psp_reference}", tags=["control"])
async def control_payout(psp_reference: str, body: PayoutOutcome, request: Request) -> dict[str, Any]:
    _control(request)
    po = _store(request).payouts.get(psp_reference)
    if po is None:
        raise Problem(404, "no-such-payout", "No such payout", psp_reference)
    try:
        _emit(request, _store(request).complete_payout(po, body.outcome, body.reason))
    except Conflict as exc:
        raise _conflict(exc) from None
    return {"psp_reference": po.psp_reference, "status": po.status}


async def _adjust(request: Request, kind: Literal["chargeback", "refund"], body: AdjustIn) -> dict[str, Any]:
    _control(request)
    p = _payment(request, body.psp_reference)
    try:
        ev = _store(request).adjust(kind, p, body.amount, body.reason)
    except Conflict as exc:
        raise _conflict(exc) from None
    _emit(request, ev)
    adj = ev.subject
    return {"psp_reference": adj.psp_reference, "payment": p.psp_reference, "reference": p.reference,
            "amount": adj.amount, "currency": p.currency, "event_id": ev.event_id}  # type: ignore[union-attr]


@router.post("/control/chargebacks", tags=["control"], status_code=201)
async def control_chargeback(body: AdjustIn, request: Request) -> dict[str, Any]:
    return await _adjust(request, "chargeback", body)


@router.post("/control/refunds", tags=["control"], status_code=201)
async def control_refund(body: AdjustIn, request: Request) -> dict[str, Any]:
    return await _adjust(request, "refund", body)


@router.get("/control/events", tags=["control"])
async def control_events(request: Request, dialect: str | None = None) -> list[dict[str, Any]]:
    _control(request)
    return [{"event_id": e.event_id, "dialect": e.dialect, "kind": e.kind,
             "psp_reference": e.subject.psp_reference, "occurred_at": e.occurred_at.isoformat()}
            for e in _store(request).events if dialect is None or e.dialect == dialect]


@router.get("/control/deliveries", tags=["control"])
async def control_deliveries(request: Request) -> dict[str, Any]:
    _control(request)
    d = _dispatcher(request)
    return {"pending": d.pending, "attempts": list(d.log)}


@router.patch("/control/delivery", tags=["control"])
async def control_delivery(body: DeliveryPolicyIn, request: Request) -> dict[str, Any]:
    """Change how webhooks are delivered from now on (pause builds a backlog; unpause releases it)."""
    _control(request)
    d = _dispatcher(request)
    p = d.policy
    for name, attr in (("duplicate_ratio", "duplicate_ratio"), ("max_copies", "max_copies"),
                       ("reorder_ratio", "reorder_ratio"), ("reorder_delay_seconds", "reorder_delay"),
                       ("paused", "paused")):
        value = getattr(body, name)
        if value is not None:
            setattr(p, attr, value)
    if "seed" in body.model_fields_set:
        d.reseed(body.seed)
    d.resume()
    return {"duplicate_ratio": p.duplicate_ratio, "max_copies": p.max_copies, "reorder_ratio": p.reorder_ratio,
            "reorder_delay_seconds": p.reorder_delay, "paused": p.paused, "pending": d.pending}


# -- the app ------------------------------------------------------------------------------------

async def _tick(rt: Runtime) -> None:
    """Expire unpaid sessions and pay due payouts, as time passes."""
    settings: PspSettings = rt.settings  # type: ignore[assignment]
    store: Store = rt.state["store"]
    dispatcher: Dispatcher = rt.state["dispatcher"]
    while True:
        await asyncio.sleep(settings.tick_seconds)
        try:
            at = now()
            for ev in [*store.due_expiries(at), *store.due_payouts(at)]:
                dispatcher.enqueue(ev)
        except Exception:  # one bad tick must not stop time for the rest of the run
            log.exception("psp tick failed")


def build_app(settings: PspSettings | None = None, *, transport: Any = None) -> FastAPI:
    """`transport`: an httpx transport for webhook deliveries (tests); default the network."""
    settings = settings or PspSettings()
    if not settings.enabled():
        raise RuntimeError("the PSP simulator has no dialect configured: set GP_PSP_SIMPSP_SECRET and "
                           "GP_PSP_SIMPSP_API_KEY and/or GP_PSP_CARDGW_SECRET and GP_PSP_CARDGW_API_KEY (or files "
                           f"<{settings.secrets_dir}>/<dialect>/secret, api_key); there is no default")

    async def start(rt: Runtime) -> None:
        policy = Policy(duplicate_ratio=settings.duplicate_ratio, max_copies=settings.max_copies,
                        reorder_ratio=settings.reorder_ratio, reorder_delay=settings.reorder_delay_seconds,
                        retry_initial=settings.retry_initial_seconds, retry_max=settings.retry_max_seconds)
        rt.state["store"] = Store(fee_basis_points=settings.fee_basis_points)
        dispatcher = Dispatcher(secret=settings.secret, url=settings.webhook_url, policy=policy, seed=settings.seed,
                                concurrency=settings.delivery_concurrency,
                                timeout=settings.delivery_timeout_seconds, transport=transport)
        rt.state["dispatcher"] = dispatcher
        dispatcher.start()
        rt.state["ticker"] = asyncio.create_task(_tick(rt), name="psp-tick")

    async def stop(rt: Runtime) -> None:
        ticker = rt.state.pop("ticker", None)
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        dispatcher = rt.state.pop("dispatcher", None)
        if dispatcher is not None:
            await dispatcher.stop()

    # A third party: it signs webhooks with the merchant's PSP secrets and holds no service identity.
    runtime = Runtime("psp", settings, publishes=False, on_start=[start], on_stop=[stop], identity=False)
    app = create_app(runtime, [router], title="gameplane PSP simulator",
                     description="A payment provider in two dialects (simpsp, cardgw): hosted page, signed "
                                 "webhooks with retries, payouts, chargebacks, refunds, settlement reports.")

    return app
