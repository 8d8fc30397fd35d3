"""A test PSP and a platform for the payments tests: real wallet and players (served on loopback
sockets, real Postgres and NATS), payments in process.

`TestPsp` is a test double of an external payment provider, written against the adapter seam
(gameplane.payments.adapters.base) with its own HMAC signature scheme: it opens sessions, accepts
payouts, signs webhooks like a PSP would (so payments' verification is exercised for real) and
writes a settlement report of what it settled. Until the psp helper's simulator is merged it
stands in for it; the tests talk to payments only through the adapter interface and HTTP.

`RiskStandIn` answers risk's decision route (the seam's DecisionRequest -> Decision) with a
decision the test chose per player, until the risk service is merged.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.testing import as_service, as_staff, running
from gameplane.payments.adapters.base import (
    PaymentMethod,
    PaymentRequest,
    PaymentSession,
    PayoutAccepted,
    PayoutRequest,
    SettlementRow,
    WebhookEvent,
    WebhookRejected,
)
from gameplane.payments.app import build_app as build_payments
from gameplane.payments.settings import PaymentsSettings
from gameplane.players.app import build_app as build_players
from gameplane.players.settings import PlayersSettings
from gameplane.wallet.app import build_app as build_wallet
from gameplane.wallet.settings import WalletSettings

FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}
HEADER = "x-testpsp-signature"
MAX_AGE = timedelta(minutes=5)


@dataclass
class TestPsp:
    name: str
    secret: str
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    settled: list[SettlementRow] = field(default_factory=list)
    fail_payouts: bool = False
    down: bool = False
    __test__ = False  # not a pytest class

    # -- the adapter interface --------------------------------------------------------------------
    async def create_payment(self, req: PaymentRequest) -> PaymentSession:
        if self.down:
            raise ConnectionError("connection refused")
        s = self.sessions.setdefault(req.reference, {"psp_reference": f"{self.name}_pay_{uuid.uuid4().hex[:16]}",
                                                     "amount": req.amount, "currency": req.currency,
                                                     "player_id": req.player_id})
        return PaymentSession(psp_reference=s["psp_reference"], expires_at=req.expires_at,
                              redirect_url=f"https://{self.name}.test/pay/{s['psp_reference']}")

    async def create_payout(self, req: PayoutRequest) -> PayoutAccepted:
        if self.down or self.fail_payouts:
            raise ConnectionError("payout refused")
        p = self.payouts.setdefault(req.reference, {"psp_reference": f"{self.name}_po_{uuid.uuid4().hex[:16]}",
                                                    "amount": req.amount, "currency": req.currency,
                                                    "method": req.method})
        return PayoutAccepted(psp_reference=p["psp_reference"], status="pending")

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        raw = {k.lower(): v for k, v in headers.items()}.get(HEADER)
        if not raw:
            raise WebhookRejected("bad-signature")
        try:
            parts = dict(p.split("=", 1) for p in raw.split(","))
            ts = int(parts["t"])
        except (ValueError, KeyError):
            raise WebhookRejected("malformed-webhook") from None
        want = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, parts.get("v1", "")):
            raise WebhookRejected("bad-signature")
        if abs(now.timestamp() - ts) > MAX_AGE.total_seconds():
            raise WebhookRejected("stale-webhook")

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        try:
            d = json.loads(body)
            m = d.get("method")
            return WebhookEvent(event_id=d["id"], kind=d["type"], reference=d["reference"],
                                psp_reference=d["psp_reference"], amount=int(d["amount"]), currency=d["currency"],
                                method=PaymentMethod(**m) if m else None,
                                occurred_at=datetime.fromisoformat(d["occurred_at"]), reason=d.get("reason"))
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected("malformed-webhook") from None

    async def settlement_report(self, day: date) -> list[SettlementRow]:
        return [r for r in self.settled if r.settled_at.date() == day]

    def row(self, d: dict[str, Any], reference: str, kind: str, at: datetime) -> SettlementRow:
        return SettlementRow(psp=self.name, psp_reference=d["psp_reference"], reference=reference,
                             kind=kind, amount=d["amount"], currency=d["currency"], settled_at=at)  # type: ignore[arg-type]

    # -- what the PSP does on its side --------------------------------------------------------------
    def sign(self, body: bytes, at: datetime | None = None, secret: str | None = None) -> dict[str, str]:
        ts = int((at or datetime.now(UTC)).timestamp())
        mac = hmac.new((secret or self.secret).encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return {HEADER: f"t={ts},v1={mac}", "content-type": "application/json"}

    def event(self, kind: str, ref: str, /, *, settle: bool = True, event_id: str | None = None,
              card: str = "4242", **overrides: Any) -> bytes:
        """The body of a webhook about one of our payments; a success or payout is also settled
        (it appears in the day's report)."""
        reference = ref
        base = self.payouts[ref] if kind.startswith("payout.") else self.sessions[ref]
        d: dict[str, Any] = {"id": event_id or f"evt_{uuid.uuid4().hex}", "type": kind, "reference": reference,
                             "psp_reference": base["psp_reference"], "amount": base["amount"],
                             "currency": base["currency"], "occurred_at": datetime.now(UTC).isoformat(),
                             "method": {"type": "card", "fingerprint": f"fp-{card}-{base.get('player_id', '')[:8]}",
                                        "label": f"VISA ..{card}"} if kind == "payment.succeeded" else None}
        d.update(overrides)
        now = datetime.now(UTC)
        if settle and kind == "payment.succeeded":
            self.settled.append(self.row(d, reference, "deposit", now))
        elif settle and kind == "payout.paid":
            self.settled.append(self.row(d, reference, "payout", now))
        elif settle and kind == "chargeback":
            self.settled.append(self.row(d, reference, "chargeback", now))
        return json.dumps(d).encode()


class RiskStandIn:
    """Risk's decision route with the seam's shapes; `decisions[player_id]` picks the answer."""

    def __init__(self) -> None:
        self.decisions: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()

        @self.app.post("/internal/risk/decisions")
        async def decide(request: Request) -> dict[str, Any]:
            body = await request.json()
            self.requests.append(body)
            decision = self.decisions.get(body["player_id"], "allow")
            return {"decision_id": str(uuid.uuid4()), "decision": decision, "score": 900 if decision != "allow" else 10,
                    "rules": ["test"] if decision != "allow" else [], "rules_version": 1,
                    "case_id": str(uuid.uuid4()) if decision == "review" else None}


@dataclass
class Platform:
    payments: FastAPI
    players: FastAPI
    wallet: FastAPI
    client: httpx.AsyncClient  # payments, in process
    urls: dict[str, str]
    psp: TestPsp
    other: TestPsp
    risk: RiskStandIn
    nats_url: str

    async def player(self, *, kyc: str = "unverified", born: str = "1990-04-01") -> uuid.UUID:
        async with httpx.AsyncClient(base_url=self.urls["players"], timeout=20) as http:
            body = {"email": f"p-{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery staple",
                    "date_of_birth": born, "country": "MT", "currency": "EUR"}
            r = await http.post("/v1/players/register", json=body, headers=as_service(self.players))
            assert r.status_code == 201, r.text
            pid = uuid.UUID(r.json()["id"])
            if kyc != "unverified":
                await self.kyc(pid, kyc)
        return pid

    async def kyc(self, pid: uuid.UUID, state: str) -> None:
        async with httpx.AsyncClient(base_url=self.urls["players"], timeout=20) as http:
            r = await http.post("/v1/players/me/kyc", headers=as_service(self.players, "gateway", pid),
                                json={"document_type": "passport", "document_reference": "doc-1"})
            assert r.status_code == 202, r.text
            if state in ("verified", "rejected"):
                r = await http.post(f"/internal/players/{pid}/kyc/decision", json={"state": state},
                                    headers=as_staff(self.players, "risk"))
                assert r.status_code == 200, r.text

    def as_player(self, pid: uuid.UUID) -> dict[str, str]:
        return as_service(self.payments, "gateway", pid)

    def staff(self, *roles: str) -> dict[str, str]:
        return as_staff(self.payments, *roles)  # type: ignore[arg-type]

    async def deposit(self, pid: uuid.UUID, amount: int, currency: str = "EUR",
                      psp: str | None = None) -> httpx.Response:
        return await self.client.post("/v1/payments/deposits", headers=self.as_player(pid),
                                      json={"amount": amount, "currency": currency, "psp": psp or self.psp.name})

    async def webhook(self, body: bytes, psp: TestPsp | None = None, headers: dict[str, str] | None = None,
                      path_psp: str | None = None) -> httpx.Response:
        psp = psp or self.psp
        return await self.client.post(f"/webhooks/payments/{path_psp or psp.name}", content=body,
                                      headers=headers if headers is not None else psp.sign(body))

    async def funded(self, amount: int, **kw: Any) -> tuple[uuid.UUID, dict[str, Any]]:
        """A player who deposited `amount` (credited): their id and the deposit's view."""
        pid = await self.player(**kw)
        r = await self.deposit(pid, amount)
        assert r.status_code == 201, r.text
        ref = r.json()["reference"]
        ack = await self.webhook(self.psp.event("payment.succeeded", ref))
        assert ack.status_code == 200, ack.text
        return pid, (await self.payment(pid, ref))

    async def reconcile(self, day: date) -> dict[str, Any]:
        r = await self.client.post("/internal/payments/reconciliation", params={"day": day.isoformat()},
                                   headers=self.staff("finance"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def payment(self, pid: uuid.UUID, reference: str) -> dict[str, Any]:
        r = await self.client.get("/v1/payments", headers=self.as_player(pid), params={"limit": 200})
        assert r.status_code == 200, r.text
        return next(p for p in r.json()["items"] if p["reference"] == reference)

    async def balance(self, pid: uuid.UUID, currency: str = "EUR") -> dict[str, int]:
        async with httpx.AsyncClient(base_url=self.urls["wallet"], timeout=20) as http:
            r = await http.get(f"/internal/wallet/players/{pid}/balances/{currency}",
                               headers=dev_identities().bearer("games", "wallet"))
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

    async def wallet_keys(self, prefix: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.urls["wallet"], timeout=60) as http:
            now = datetime.now(UTC)
            r = await http.get("/internal/wallet/movements", headers=dev_identities().bearer("payments", "wallet"),
                               params={"prefix": prefix, "since": (now - timedelta(days=1)).isoformat(),
                                       "until": (now + timedelta(days=1)).isoformat()})
            assert r.status_code == 200, r.text
            return r.json()["items"]  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def payments_platform(settings_factory: Any, nats_url: str, *, psp_name: str = "testpsp",
                            **payments_overrides: Any) -> AsyncIterator[Platform]:
    psp = TestPsp(psp_name, "test-psp-secret-0123456789abcdef")
    other = TestPsp("otherpsp", "other-psp-secret-0123456789abcdef")
    risk = RiskStandIn()
    socks = {n: listener() for n in ("wallet", "players", "risk")}
    urls = {n: f"http://127.0.0.1:{s.getsockname()[1]}" for n, s in socks.items()}
    common = {"endpoints": urls, "log_level": "WARNING"}
    wallet = build_wallet(settings_factory(WalletSettings, hold_sweep_seconds=3600, **common))
    players = build_players(settings_factory(PlayersSettings, jurisdiction="mga", **FAST_HASH, **common))
    ps = settings_factory(PaymentsSettings, **{"sweep_seconds": 0.3, "jurisdiction": "mga", **common,
                                               **payments_overrides})
    payments = build_payments(ps, adapters={psp.name: psp, other.name: other})
    async with contextlib.AsyncExitStack() as stack:
        for sock in socks.values():
            stack.callback(sock.close)
        await stack.enter_async_context(served(wallet, socks["wallet"]))
        await stack.enter_async_context(served(players, socks["players"]))
        await stack.enter_async_context(served(risk.app, socks["risk"]))
        client = await stack.enter_async_context(running(payments))
        yield Platform(payments, players, wallet, client, urls, psp, other, risk, nats_url)
