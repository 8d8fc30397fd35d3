"""`gameplane load`: players on a running platform, over HTTP as the outside world reaches it.

Each simulated player registers and logs in through the gateway, then does what the mix says:
deposits (payments creates the deposit, the PSP simulator's hosted page is filled in and submitted
as a browser would, the player lands back on the platform), plays (balance, a game session, its
launch page at the RGS simulator, a few spins the studio settles through the provider API) and
withdraws (to a method deposited with). Actions start at a fixed rate (open loop, so a slow
platform shows as latency, not as a lower offered load), one at a time per player.

A failed action is counted (by status and problem type) and the run goes on: the point of a load
run is to see how the platform answers, bad answers included.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from gameplane.cli.loadstats import DEFAULT_MIX, Stats, parse_mix, schedule

PASSWORD = "load-Plays-the-Platform-17"
CARD = "4242 4242 4242 4242"  # a valid (Luhn) test card: the PSP simulator pays with it
GAME = "fruit-fives"


@dataclass(frozen=True)
class Target:
    """Where the platform answers: the gateway (players' API) and the two simulators a player's
    browser talks to."""

    gateway: str
    rgs: str | None  # None: a platform without the simulator (a play with funds then fails, counted)
    psp: str | None

    @classmethod
    def from_secrets(cls, secrets: dict[str, Any], gateway: str | None = None, rgs: str | None = None) -> Target:
        services = secrets.get("services", {})
        if not (gateway or "gateway" in services):
            raise LookupError("the platform runs no gateway")
        return cls(gateway or services["gateway"], rgs or services.get("rgs"), services.get("psp"))


@dataclass(frozen=True)
class LoadOptions:
    rate: float = 5.0
    duration: float = 30.0
    players: int = 10
    mix: str = DEFAULT_MIX
    deposit: int = 5_000
    withdraw: int = 1_000
    spins: int = 5
    stake: int = 50
    psp: str = "simpsp"
    timeout: float = 30.0


class Failed(Exception):
    """An action got an answer it could not go on with; `kind` is how the summary counts it."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail  # the problem's detail: says which dependency, which limit


def failure(resp: httpx.Response) -> Failed:
    """"<status> <problem type slug>" (the stable part of a problem+json answer), else the status."""
    kind, detail = str(resp.status_code), resp.text[:200]
    if resp.headers.get("content-type", "").startswith("application/problem+json"):
        try:
            problem = resp.json()
            kind += " " + str(problem.get("type", "")).rstrip("/").rsplit("/", 1)[-1]
            detail = str(problem.get("detail") or problem.get("title") or "")
        except ValueError:
            pass
    return Failed(kind, detail)


def expect(resp: httpx.Response, *statuses: int) -> httpx.Response:
    if resp.status_code not in statuses:
        raise failure(resp)
    return resp


class _Form(HTMLParser):
    """The hosted payment page's form as a browser submits it: its action, default fields, buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}  # value -> name

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif tag == "input" and a.get("name") and (a.get("type") != "radio" or "checked" in a):
            self.fields.setdefault(a["name"], a.get("value", ""))
        elif tag == "button" and a.get("type", "submit") == "submit" and a.get("name"):
            self.buttons[a["value"]] = a["name"]


@dataclass
class Player:
    email: str
    auth: dict[str, str] = field(default_factory=dict)
    player_id: str = ""


class Load:
    """One run against one platform."""

    def __init__(self, target: Target, opts: LoadOptions, stats: Stats | None = None) -> None:
        self.target = target
        self.opts = opts
        self.stats = stats or Stats()
        self.weights = parse_mix(opts.mix)
        self.started = 0
        self.in_flight = 0

    async def timed(self, action: str, work: Callable[[], Awaitable[str | None]]) -> bool:
        """Run one action, recording its latency and outcome; never raises."""
        t0 = time.perf_counter()
        self.in_flight += 1
        try:
            outcome = await work()
        except Failed as exc:
            self.stats.record(action, time.perf_counter() - t0, error=exc.kind, detail=exc.detail)
            return False
        except Exception as exc:  # no answer, or not the documented one: counted, and the run goes on
            self.stats.record(action, time.perf_counter() - t0, error=type(exc).__name__, detail=str(exc)[:200])
            return False
        finally:
            self.in_flight -= 1
        self.stats.record(action, time.perf_counter() - t0, outcome=outcome)
        return True

    # --- what a player does ---------------------------------------------------------------------

    async def register(self, gw: httpx.AsyncClient, p: Player) -> str | None:
        expect(await gw.post("/v1/players/register", json={
            "email": p.email, "password": PASSWORD, "date_of_birth": "1990-01-02", "country": "MT",
            "currency": "EUR"}), 201)
        return None

    async def login(self, gw: httpx.AsyncClient, p: Player) -> str | None:
        body = expect(await gw.post("/v1/players/login", json={"email": p.email, "password": PASSWORD}), 200).json()
        p.player_id, p.auth = body["player_id"], {"authorization": f"Bearer {body['access_token']}"}
        return None

    async def deposit(self, gw: httpx.AsyncClient, browser: httpx.AsyncClient, p: Player) -> str | None:
        created = expect(await gw.post("/v1/payments/deposits", headers=p.auth, json={
            "amount": self.opts.deposit, "currency": "EUR", "psp": self.opts.psp}), 201).json()
        page = expect(await browser.get(created["redirect_url"]), 200)
        form = _Form()
        form.feed(page.text)
        if form.action is None or "pay" not in form.buttons:
            raise Failed("hosted-page-without-form")
        submitted = expect(await browser.post(urljoin(created["redirect_url"], form.action), data={
            **form.fields, "method": "card", "card_number": CARD, form.buttons["pay"]: "pay"}), 303)
        # The browser is sent back to the platform with the PSP's verdict; crediting follows the
        # PSP's webhook, asynchronously, so the action ends here as the player's wait does.
        status = parse_qs(urlsplit(submitted.headers["location"]).query).get("status", ["?"])[0]
        if status != "succeeded":
            raise Failed(f"psp-{status}")
        return None

    async def cash(self, gw: httpx.AsyncClient, p: Player) -> int:
        balances = expect(await gw.get("/v1/wallet/balances", headers=p.auth), 200).json()["balances"]
        return sum(int(b["cash"]) for b in balances if b["currency"] == "EUR")

    async def play(self, gw: httpx.AsyncClient, browser: httpx.AsyncClient, p: Player) -> str | None:
        if await self.cash(gw, p) < self.opts.stake * self.opts.spins:
            return "no-funds"  # a deposit not credited yet: nothing to stake, not the platform's fault
        if self.target.rgs is None:
            raise Failed("no-rgs")  # nowhere to spin (--rgs names the studio's simulator)
        session = expect(await gw.post("/v1/sessions", json={"game_id": GAME}, headers=p.auth), 201).json()
        expect(await browser.get(session["launch_url"]), 200)
        played = expect(await browser.post(f"{self.target.rgs}/sessions/{session['token']}/spins",
                                           json={"count": self.opts.spins, "stake": self.opts.stake}), 200).json()
        if played.get("stopped"):
            return "stopped"  # e.g. a limit reached mid-session: the studio reports the refusal
        return None

    async def withdraw(self, gw: httpx.AsyncClient, p: Player) -> str | None:
        payments = expect(await gw.get("/v1/payments", headers=p.auth), 200).json()["items"]
        methods = [x["method_fingerprint"] for x in payments
                   if x["kind"] == "deposit" and x["state"] == "succeeded" and x.get("method_fingerprint")]
        if not methods:
            return "no-method"
        if await self.cash(gw, p) < self.opts.withdraw:
            return "no-funds"
        made = expect(await gw.post("/v1/payments/withdrawals", headers=p.auth, json={
            "amount": self.opts.withdraw, "currency": "EUR", "method_fingerprint": methods[0]}), 201).json()
        return str(made["state"])

    # --- the run ----------------------------------------------------------------------------------

    async def run(self, on_tick: Callable[[], None] | None = None) -> float:
        """Register the players, then start actions at the rate for the duration; wait for the
        last ones to finish. Returns the seconds the action phase took."""
        limits = httpx.Limits(max_connections=max(10, self.opts.players * 2))
        async with httpx.AsyncClient(base_url=self.target.gateway, timeout=self.opts.timeout, limits=limits) as gw, \
                httpx.AsyncClient(timeout=self.opts.timeout, limits=limits) as browser:
            players = [Player(f"load-{uuid.uuid4().hex[:12]}@example.com") for _ in range(self.opts.players)]

            signing_up = asyncio.Semaphore(10)  # many players at once would only meet the per-address limit

            async def join(p: Player) -> Player | None:
                async with signing_up:
                    ok = await self.timed("register", lambda: self.register(gw, p)) and \
                        await self.timed("login", lambda: self.login(gw, p))
                return p if ok else None

            joined = [p for p in await asyncio.gather(*(join(p) for p in players)) if p is not None]
            if on_tick:
                on_tick()
            if not joined:
                return 0.0
            idle: asyncio.Queue[Player] = asyncio.Queue()
            for p in joined:
                idle.put_nowait(p)
            actions = schedule(self.weights)
            tasks: set[asyncio.Task[None]] = set()

            async def act(action: str, p: Player) -> None:
                try:
                    if action == "deposit":
                        await self.timed(action, lambda: self.deposit(gw, browser, p))
                    elif action == "play":
                        await self.timed(action, lambda: self.play(gw, browser, p))
                    else:
                        await self.timed(action, lambda: self.withdraw(gw, p))
                finally:
                    idle.put_nowait(p)

            start = time.monotonic()
            end = start + self.opts.duration
            interval = 1.0 / self.opts.rate
            next_at = start
            while (now := time.monotonic()) < end:
                if now < next_at:
                    await asyncio.sleep(min(next_at - now, 0.25))
                    if on_tick:
                        on_tick()
                    continue
                try:  # every player busy: the action waits for one (and starts late)
                    p = await asyncio.wait_for(idle.get(), timeout=min(0.25, max(0.01, end - now)))
                except TimeoutError:
                    if on_tick:
                        on_tick()
                    continue
                task = asyncio.create_task(act(next(actions), p))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                self.started += 1
                next_at += interval
            while tasks:
                await asyncio.wait(set(tasks), timeout=0.25)
                if on_tick:
                    on_tick()
            return time.monotonic() - start


def progress_table(load: Load, elapsed: float) -> Table:
    s = load.stats
    table = Table("action", "ok", "errors", "p50 ms", "p95 ms",
                  title=f"gameplane load: {elapsed:5.1f}s of {load.opts.duration:g}s, {load.in_flight} in flight, "
                        f"{s.done} done, {s.failed} errors")
    for action, a in sorted(s.actions.items()):
        row = a.summary()
        table.add_row(action, str(row["ok"]), str(row["errors"]), str(row["p50_ms"] or "-"), str(row["p95_ms"] or "-"))
    return table


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table("action", "count", "ok", "errors", "p50 ms", "p95 ms",
                  title=f"{summary['actions_done']} actions in {summary['elapsed_s']}s "
                        f"({summary['rate_per_s']}/s), {summary['errors']} errors, "
                        f"{summary['server_errors']} 5xx")
    for action, a in summary["actions"].items():
        table.add_row(action, str(a["count"]), str(a["ok"]), str(a["errors"]), str(a["p50_ms"] or "-"),
                      str(a["p95_ms"] or "-"))
    return table


def run_load(target: Target, opts: LoadOptions, *, as_json: bool, console: Console) -> dict[str, Any]:
    """Run with a live progress display on stderr; print the summary (a table, or JSON on stdout)."""
    load = Load(target, opts)
    progress = Console(stderr=True)
    t0 = time.monotonic()
    with Live(progress_table(load, 0.0), console=progress, refresh_per_second=4, transient=True) as live:
        elapsed = asyncio.run(load.run(lambda: live.update(progress_table(load, time.monotonic() - t0))))
    summary = load.stats.summary(elapsed) | {
        "options": {"rate": opts.rate, "duration": opts.duration, "players": opts.players, "mix": load.weights},
        "target": {"gateway": target.gateway, "rgs": target.rgs, "psp": target.psp}}
    if as_json:
        print(json.dumps(summary, indent=2), flush=True)
    else:
        console.print(summary_table(summary))
        for kind, n in summary["errors_by_kind"].items():
            example = summary["error_examples"].get(kind)
            console.print(f"  error {kind}: {n}" + (f" (first: {example})" if example else ""))
        for kind, n in summary["outcomes"].items():
            console.print(f"  {kind}: {n}")
    return summary


def target_from(data_dir: Path | None, gateway: str | None, rgs: str | None = None) -> Target:
    from gameplane.devtools import localsecrets  # a laptop's file: not in the service image

    return Target.from_secrets(localsecrets.read(data_dir), gateway, rgs)
