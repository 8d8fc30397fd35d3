"""A platform for the payments tests: real wallet and players, payments served on its own loopback
port (real Postgres and NATS behind them), and the real PSP simulator (both dialects, `simpsp` and
`cardgw`) reached through payments' real adapters.

Money arrives as it would in production: payments opens a session at the simulator, the test
completes the hosted page over HTTP as a browser would, and the simulator signs and delivers its
webhooks to payments' /webhooks/payments/<psp> over HTTP, retrying, duplicating and reordering them
as its delivery policy says. Declines, expiries, late successes, payout outcomes and chargebacks
are asked of the simulator's control API. A webhook the simulator would never send (forged,
stale, misrouted, altered) is rendered by the simulator's own dialect code
(`gameplane.simulators.psp.dialects`) from what the simulator holds, and signed with the dialect's
real signature scheme, so payments' verification sees exactly the wire format it meets in
production.

Risk is the real risk service, on its own port with its own database. Its rule set is data: the
platform starts it with no rules (everything allowed, so the tests' deposits and withdrawals are
not caught by fraud heuristics meant for real traffic), and a test that needs a denial or a review
publishes a rule set that says so through risk's back office (`risk_says`), as an analyst would;
cases it opens are decided through risk's back office too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from psplib import complete_page

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.pspsim import PspRun, psp_simulator
from gameplane.devtools.testing import as_service, as_staff, stored_events
from gameplane.payments.app import build_app as build_payments
from gameplane.payments.settings import PaymentsSettings
from gameplane.players.app import build_app as build_players
from gameplane.players.settings import PlayersSettings
from gameplane.risk.app import build_app as build_risk
from gameplane.risk.settings import RiskSettings
from gameplane.simulators.psp import dialects
from gameplane.simulators.psp.settings import DIALECTS
from gameplane.simulators.psp.store import Adjustment, Event, Payment, Payout, Store, card_method, new_id
from gameplane.wallet.app import build_app as build_wallet
from gameplane.wallet.settings import WalletSettings

FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}
CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"  # the simulator's issuer declines it: "card-declined"


NO_RULES: dict[str, Any] = {"review_at": 1000, "deny_at": 1000, "rules": []}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = "condition",
                     every: float = 0.1) -> Any:
    """Poll until `check` returns something truthy (webhooks arrive asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not reached in time: {what}")
        await asyncio.sleep(every)


@dataclass
class Platform:
    payments: FastAPI
    players: FastAPI
    wallet: FastAPI
    client: httpx.AsyncClient  # payments, over HTTP on its port
    urls: dict[str, str]
    sim: PspRun
    risk: FastAPI
    nats_url: str
    browser: httpx.AsyncClient  # the player's browser (no base URL, no credentials)
    psp_control: httpx.AsyncClient  # the simulator's control API
    psp: str = "simpsp"  # the PSP a test uses unless it names one

    # -- people ---------------------------------------------------------------------------------
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

    # -- risk: rules as data, cases --------------------------------------------------------------
    async def risk_rules(self, document: dict[str, Any], reason: str) -> None:
        async with httpx.AsyncClient(base_url=self.urls["risk"], timeout=20) as http:
            r = await http.post("/internal/risk/rule-sets", json={"document": document, "reason": reason},
                                headers=as_staff(self.risk, "risk"))
        assert r.status_code == 201, r.text

    @contextlib.asynccontextmanager
    async def risk_says(self, decision: str, kind: str) -> AsyncIterator[None]:
        """While the block runs, risk's rule set answers `decision` to every `kind` decision."""
        rule = {"id": f"every-{kind}", "type": "large_amount", "score": 0, "action": decision,
                "applies_to": [kind], "amount_gte": {"EUR": 1}}
        await self.risk_rules({"review_at": 1000, "deny_at": 1000, "rules": [rule]}, f"tests: {decision} every {kind}")
        try:
            yield
        finally:
            await self.risk_rules(NO_RULES, "tests: no rules")

    async def risk_case(self, reference: str) -> dict[str, Any]:
        """The review case risk opened for our `reference`."""
        async with httpx.AsyncClient(base_url=self.urls["risk"], timeout=20) as http:
            r = await http.get("/internal/risk/cases", params={"limit": 500}, headers=as_staff(self.risk, "risk"))
        assert r.status_code == 200, r.text
        return next(c for c in r.json()["cases"] if c["reference"] == reference)  # type: ignore[no-any-return]

    async def decide_case(self, case_id: str, outcome: str, reason: str = "checked the documents") -> None:
        async with httpx.AsyncClient(base_url=self.urls["risk"], timeout=20) as http:
            r = await http.post(f"/internal/risk/cases/{case_id}/decision", json={"outcome": outcome, "reason": reason},
                                headers=as_staff(self.risk, "risk"))
        assert r.status_code == 200, r.text

    async def risk_decisions(self, pid: uuid.UUID, kind: str) -> list[dict[str, Any]]:
        """The `risk.decided` events risk published about the player's `kind` requests (decision and
        request), once there is one."""
        async def mine() -> list[dict[str, Any]]:
            found = await stored_events(self.nats_url, "gameplane.risk.decided", {}, expect=1, timeout=5)
            return [e["data"] for e in found
                    if e["data"]["request"]["player_id"] == str(pid) and e["data"]["request"]["kind"] == kind]
        return await eventually(mine, what=f"risk's {kind} decision for {pid}")  # type: ignore[no-any-return]

    # -- the PSP: its state, its control API, the hosted page ------------------------------------
    @property
    def store(self) -> Store:
        """What the simulated PSP holds (read-only use: sessions, payouts, events)."""
        return self.sim.app.state.runtime.state["store"]  # type: ignore[no-any-return]

    def sessions_of(self, pid: uuid.UUID) -> list[Payment]:
        return [p for p in self.store.payments.values() if p.player_id == str(pid)]

    def payout_for(self, reference: str) -> Payout | None:
        return next((po for po in self.store.payouts.values() if po.reference == reference), None)

    async def control(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.psp_control.request(method, path, **kw)
        assert r.is_success, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    async def delivery(self, **policy: Any) -> dict[str, Any]:
        """Change how the simulator delivers webhooks from now on (paused, duplicate_ratio, ...)."""
        return await self.control("PATCH", "/control/delivery", json=policy)  # type: ignore[no-any-return]

    async def pay(self, redirect_url: str, card: str = CARD, button: str = "pay") -> httpx.Response:
        """Complete (or cancel) the hosted page as a browser would: read its form, post it."""
        answer = await complete_page(self.browser, redirect_url, button=button, card_number=card)
        assert answer.status_code == 303, answer.text
        return answer

    # -- payments' routes -------------------------------------------------------------------------
    async def deposit(self, pid: uuid.UUID, amount: int, currency: str = "EUR",
                      psp: str | None = None) -> httpx.Response:
        return await self.client.post("/v1/payments/deposits", headers=self.as_player(pid),
                                      json={"amount": amount, "currency": currency, "psp": psp or self.psp})

    async def payment(self, pid: uuid.UUID, reference: str) -> dict[str, Any]:
        r = await self.client.get("/v1/payments", headers=self.as_player(pid), params={"limit": 200})
        assert r.status_code == 200, r.text
        return next(p for p in r.json()["items"] if p["reference"] == reference)

    async def until(self, pid: uuid.UUID, reference: str, timeout: float = 30.0,
                    **want: Any) -> dict[str, Any]:
        """The payment once its view has every field in `want` (e.g. state="succeeded", credited=True)."""
        async def check() -> dict[str, Any] | None:
            view = await self.payment(pid, reference)
            return view if all(view[k] == v for k, v in want.items()) else None
        return await eventually(check, timeout, f"{reference} with {want}")  # type: ignore[no-any-return]

    async def paid_deposit(self, pid: uuid.UUID, amount: int, psp: str | None = None,
                           card: str = CARD) -> dict[str, Any]:
        """A deposit paid on the hosted page and credited from the simulator's webhook: its view."""
        r = await self.deposit(pid, amount, psp=psp)
        assert r.status_code == 201, r.text
        await self.pay(r.json()["redirect_url"], card)
        return await self.until(pid, r.json()["reference"], state="succeeded", credited=True)

    async def funded(self, amount: int, psp: str | None = None, card: str = CARD,
                     **kw: Any) -> tuple[uuid.UUID, dict[str, Any]]:
        """A player who deposited `amount` (credited): their id and the deposit's view."""
        pid = await self.player(**kw)
        return pid, await self.paid_deposit(pid, amount, psp, card)

    async def reconcile(self, day: Any) -> dict[str, Any]:
        r = await self.client.post("/internal/payments/reconciliation", params={"day": day.isoformat()},
                                   headers=self.staff("finance"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    # -- webhooks the simulator would not send on its own ----------------------------------------
    def sign(self, dialect: str, body: bytes, at: datetime | None = None, secret: str | None = None) -> dict[str, str]:
        """The dialect's real signature headers (of the PSP's secret unless another is given)."""
        ts = int((at or datetime.now(UTC)).timestamp())
        return {"Content-Type": "application/json",
                **dialects.sign(dialect, secret or self.sim.keys[dialect]["secret"], body, ts)}

    def replay(self, event_id: str) -> tuple[str, bytes]:
        """The body the simulator delivered for one of its events (a redelivery by the PSP)."""
        ev = next(e for e in self.store.events if e.event_id == event_id)
        return ev.dialect, dialects.event_body(ev)

    def forge(self, kind: str, psp_reference: str, *, dialect: str | None = None, card: str = CARD,
              event_id: str | None = None, **changes: Any) -> bytes:
        """A webhook body about one of the simulator's payments, rendered in `dialect` (default the
        payment's) as the PSP renders its events, with the payment's fields changed by `changes`
        (amount, currency, reference, ...). Nothing at the PSP changes: it is a message, not a payment."""
        p = self.store.payments[psp_reference]
        status = {"payment.succeeded": "succeeded", "payment.failed": "failed", "payment.expired": "expired"}[kind]
        d = dialect or p.dialect
        subject = dataclasses.replace(p, dialect=d, status=status, method=card_method(d, card), **changes)
        ev = Event(event_id or new_id(d, "event"), d, kind, subject, datetime.now(UTC))  # type: ignore[arg-type]
        return dialects.event_body(ev)

    def forge_chargeback(self, psp_reference: str, amount: int) -> tuple[str, bytes]:
        """A chargeback webhook for a payment the simulator knows, which its control API never made."""
        p = self.store.payments[psp_reference]
        adj = Adjustment(new_id(p.dialect, "chargeback"), p.dialect, "chargeback", p, amount, "fraudulent",
                         datetime.now(UTC))
        return p.dialect, dialects.event_body(Event(new_id(p.dialect, "event"), p.dialect, "chargeback", adj,
                                                    datetime.now(UTC)))

    async def webhook(self, body: bytes, dialect: str | None = None, headers: dict[str, str] | None = None,
                      path_psp: str | None = None) -> httpx.Response:
        """Post a webhook straight to payments (signed for `dialect` unless headers are given)."""
        d = dialect or self.psp
        return await self.client.post(f"/webhooks/payments/{path_psp or d}", content=body,
                                      headers=headers if headers is not None else self.sign(d, body))

    async def events(self, psp_reference: str, kind: str) -> list[dict[str, Any]]:
        found = await self.control("GET", "/control/events")
        return [e for e in found if e["psp_reference"] == psp_reference and e["kind"] == kind]

    async def delivered(self, event_id: str) -> bool:
        """Whether payments acknowledged (2xx) a delivery of the simulator's event."""
        log = (await self.control("GET", "/control/deliveries"))["attempts"]
        return any(a["event_id"] == event_id and a["ok"] for a in log)

    # -- the wallet's books ------------------------------------------------------------------------
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
async def payments_platform(settings_factory: Any, nats_url: str, *, psp_overrides: dict[str, Any] | None = None,
                            **payments_overrides: Any) -> AsyncIterator[Platform]:
    """`psp_overrides`: PspSettings fields of the simulator (duplicate_ratio, max_copies, ...).
    Payouts wait for the control API unless `payout_delay_seconds` is given there."""
    socks = {n: listener() for n in ("wallet", "players", "risk", "payments")}
    urls = {n: f"http://127.0.0.1:{s.getsockname()[1]}" for n, s in socks.items()}
    hooks = {d: f"{urls['payments']}/webhooks/payments/{d}" for d in DIALECTS}
    async with contextlib.AsyncExitStack() as stack:
        for sock in socks.values():
            stack.callback(sock.close)
        sim = await stack.enter_async_context(psp_simulator(hooks, **{
            "payout_delay_seconds": None, "seed": 14, **(psp_overrides or {})}))
        common = {"endpoints": {**urls, "psp": sim.url}, "log_level": "WARNING"}
        wallet = build_wallet(settings_factory(WalletSettings, hold_sweep_seconds=3600, **common))
        players = build_players(settings_factory(PlayersSettings, jurisdiction="mga", **FAST_HASH, **common))
        risk = build_risk(settings_factory(RiskSettings, **common))
        ps = settings_factory(PaymentsSettings, **{
            "sweep_seconds": 0.3, "jurisdiction": "mga", "psps": {d: sim.connection(d) for d in DIALECTS},
            # every service shares this process's one event loop: a risk answer slower than the
            # production 0.3 s measures the busy test machine, and would trip the fail-safe at random
            "risk_timeout_seconds": 5.0, **common, **payments_overrides})
        payments = build_payments(ps)  # its adapters from its settings, as in a deployment
        await stack.enter_async_context(served(wallet, socks["wallet"]))
        await stack.enter_async_context(served(players, socks["players"]))
        await stack.enter_async_context(served(risk, socks["risk"]))
        await stack.enter_async_context(served(payments, socks["payments"]))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=urls["payments"], timeout=60))
        browser = await stack.enter_async_context(httpx.AsyncClient(timeout=20))
        control = await stack.enter_async_context(httpx.AsyncClient(base_url=sim.url, timeout=20,
                                                                    headers=sim.control_headers()))
        platform = Platform(payments, players, wallet, client, urls, sim, risk, nats_url, browser, control)
        await platform.risk_rules(NO_RULES, "tests: no rules")
        yield platform
