"""A Hypothesis state machine over the wallet's HTTP API: every operation, replays and conflicting
replays, mixed at random against an independent model; after each step the model's balances must
match and the reconciliation (all six invariants of ledger.md) must be clean.

Runs 20 examples × 100 steps = 2,000 steps, derandomized (the same sequence every run)."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from walletlib import W, caller_of

from gameplane.devtools.testing import as_service, as_staff, running
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings

# WALLET_SM_EXAMPLES lets a developer run a quick subset; CI runs the full 2,000 steps
EXAMPLES, STEPS = int(os.environ.get("WALLET_SM_EXAMPLES", "20")), 100
amount = st.integers(min_value=0, max_value=500)
positive = st.integers(min_value=1, max_value=500)
pick = st.integers(min_value=0, max_value=10**6)


@dataclass
class Player:
    id: uuid.UUID
    cash: int = 0
    bonus: int = 0
    hold: int = 0


@dataclass
class Round:
    player: int
    id: str
    stake_cash: int = 0
    stake_bonus: int = 0
    closed: bool = False
    paid: bool = False


@dataclass
class Bet:
    key: str
    player: int
    round: Round
    cash: int
    bonus: int
    rolled_back: bool = False


@dataclass
class Harness:
    loop: asyncio.AbstractEventLoop
    app: Any
    client: httpx.AsyncClient

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        # A service token lives 60 s and 2,000 steps can take longer on a busy machine: a fresh one
        # per call (an expired one turned a step into a 401 and the run into "flaky" data).
        headers = as_staff(self.app, "finance") if path == "/adjustments" else as_service(self.app, caller_of(path))
        return self.loop.run_until_complete(self.client.request(method, W + path, json=body, headers=headers))


def slug(r: httpx.Response) -> str:
    return str(r.json().get("type", "")).rsplit("/", 1)[-1]


class WalletMachine(RuleBasedStateMachine):
    h: Harness  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        self.players = [Player(uuid.uuid4()) for _ in range(2)]
        self.rounds: list[Round] = []
        self.bets: list[Bet] = []
        self.tombstones: list[str] = []
        self.holds: list[dict[str, Any]] = []
        self.grants: list[dict[str, Any]] = []
        self.answered: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.n = 0

    # -- helpers -------------------------------------------------------------------------------
    def key(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{uuid.uuid4().hex[:8]}-{self.n}"

    def send(self, path: str, body: dict[str, Any], status: int, problem: str | None = None) -> dict[str, Any]:
        r = self.h.call("POST", path, body)
        assert r.status_code == status, (path, body, r.status_code, r.text)
        if problem is not None:
            assert slug(r) == problem, r.text
        doc: dict[str, Any] = r.json()
        if status == 200:
            self.answered.append((path, body, doc))
        return doc

    def expect_balance(self, p: Player, doc: dict[str, Any]) -> None:
        assert doc["balance"] == {"currency": "EUR", "cash": p.cash, "bonus": p.bonus, "withdrawal_hold": p.hold}, (
            doc, p)

    def money(self, i: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        p = self.players[i % len(self.players)]
        return {"player_id": str(p.id), "currency": "EUR", **(extra or {})}

    # -- operations ----------------------------------------------------------------------------
    @rule(i=pick, value=positive)
    def deposit(self, i: int, value: int) -> None:
        p = self.players[i % 2]
        doc = self.send("/deposits", {"idempotency_key": self.key("dep"), **self.money(i), "amount": value}, 200)
        p.cash += value
        self.expect_balance(p, doc)

    @rule(i=pick, value=amount, reuse=pick)
    def bet(self, i: int, value: int, reuse: int) -> None:
        own = [r for r in self.rounds if r.player == i % 2]
        rnd = own[reuse % len(own)] if own and reuse % 3 else None
        fresh = rnd is None
        if rnd is None:
            rnd = Round(i % 2, self.key("round"))  # exists in the wallet only once a bet in it succeeds
        p = self.players[i % 2]
        body = {"idempotency_key": self.key("bet"), **self.money(i), "amount": value, "round_id": rnd.id,
                "game_id": "g", "provider": "rgs"}
        if rnd.closed:
            self.send("/bets", body, 409, "round-closed")
            return
        if value > p.cash + p.bonus:
            self.send("/bets", body, 402, "insufficient-funds")
            return
        doc = self.send("/bets", body, 200)
        if fresh:
            self.rounds.append(rnd)
        cash = min(value, p.cash)
        assert doc["split"] == {"cash": cash, "bonus": value - cash}
        p.cash -= cash
        p.bonus -= value - cash
        rnd.stake_cash += cash
        rnd.stake_bonus += value - cash
        self.bets.append(Bet(body["idempotency_key"], i % 2, rnd, cash, value - cash))
        self.expect_balance(p, doc)

    @precondition(lambda self: self.rounds)
    @rule(j=pick, value=amount, close=st.booleans())
    def win(self, j: int, value: int, close: bool) -> None:
        rnd = self.rounds[j % len(self.rounds)]
        p = self.players[rnd.player]
        body = {"idempotency_key": self.key("win"), "player_id": str(p.id), "currency": "EUR", "amount": value,
                "round_id": rnd.id, "game_id": "g", "provider": "rgs", "close_round": close}
        if rnd.closed:
            self.send("/wins", body, 409, "round-closed")
            return
        doc = self.send("/wins", body, 200)
        total = rnd.stake_cash + rnd.stake_bonus
        bonus = value * rnd.stake_bonus // total if total else 0
        assert doc["split"] == {"cash": value - bonus, "bonus": bonus}
        p.cash += value - bonus
        p.bonus += bonus
        rnd.closed = rnd.closed or close
        rnd.paid = rnd.paid or value > 0
        self.expect_balance(p, doc)

    @rule(i=pick)
    def win_without_bet(self, i: int) -> None:
        body = {"idempotency_key": self.key("win"), **self.money(i), "amount": 1, "round_id": self.key("none"),
                "game_id": "g", "provider": "rgs"}
        self.send("/wins", body, 404, "bet-not-found")

    @rule(j=pick, unknown=st.booleans())
    def rollback(self, j: int, unknown: bool) -> None:
        if unknown or not self.bets:
            i = j % 2
            bet_key = self.key("never")
            doc = self.send("/rollbacks", {"idempotency_key": self.key("rb"), **self.money(i),
                                           "bet_idempotency_key": bet_key, "provider": "rgs"}, 200)
            assert doc["noop"] and doc["amount"] == 0
            self.tombstones.append(bet_key)
            self.expect_balance(self.players[i], doc)
            return
        b = self.bets[j % len(self.bets)]
        p = self.players[b.player]
        body = {"idempotency_key": self.key("rb"), "player_id": str(p.id), "currency": "EUR",
                "bet_idempotency_key": b.key, "provider": "rgs"}
        if b.rolled_back:
            doc = self.send("/rollbacks", body, 200)
            assert doc["noop"]
        elif b.round.paid:
            self.send("/rollbacks", body, 409, "round-settled")
            return
        else:
            doc = self.send("/rollbacks", body, 200)
            assert doc["split"] == {"cash": b.cash, "bonus": b.bonus} and not doc["noop"]
            p.cash += b.cash
            p.bonus += b.bonus
            b.round.stake_cash -= b.cash
            b.round.stake_bonus -= b.bonus
            b.rolled_back = True
        self.expect_balance(p, doc)

    @precondition(lambda self: self.tombstones)
    @rule(j=pick, value=amount)
    def late_bet(self, j: int, value: int) -> None:
        key = self.tombstones[j % len(self.tombstones)]
        body = {"idempotency_key": key, **self.money(j), "amount": value, "round_id": self.key("round"),
                "game_id": "g", "provider": "rgs"}
        self.send("/bets", body, 409, "bet-rolled-back")

    @rule(i=pick, value=positive)
    def hold(self, i: int, value: int) -> None:
        p = self.players[i % 2]
        body = {"idempotency_key": self.key("hold"), **self.money(i), "amount": value}
        if value > p.cash:
            self.send("/withdrawals", body, 402, "insufficient-funds")
            return
        doc = self.send("/withdrawals", body, 200)
        p.cash -= value
        p.hold += value
        self.holds.append({"id": doc["hold_id"], "player": i % 2, "remaining": value, "open": True})
        self.expect_balance(p, doc)

    @precondition(lambda self: self.holds)
    @rule(j=pick, value=st.none() | positive)
    def post(self, j: int, value: int | None) -> None:
        h = self.holds[j % len(self.holds)]
        p = self.players[h["player"]]
        body = {"idempotency_key": self.key("post"), "amount": value}
        path = f"/withdrawals/{h['id']}/post"
        if not h["open"]:
            self.send(path, body, 409, "hold-closed")
            return
        take = h["remaining"] if value is None else value
        if take > h["remaining"]:
            self.send(path, body, 409, "hold-exceeded")
            return
        doc = self.send(path, body, 200)
        h["remaining"] -= take
        h["open"] = h["remaining"] > 0
        p.hold -= take
        assert doc["remaining"] == h["remaining"]
        self.expect_balance(p, doc)

    @precondition(lambda self: self.holds)
    @rule(j=pick)
    def void(self, j: int) -> None:
        h = self.holds[j % len(self.holds)]
        p = self.players[h["player"]]
        path = f"/withdrawals/{h['id']}/void"
        if not h["open"]:
            self.send(path, {"idempotency_key": self.key("void")}, 409, "hold-closed")
            return
        doc = self.send(path, {"idempotency_key": self.key("void")}, 200)
        p.cash += h["remaining"]
        p.hold -= h["remaining"]
        h["remaining"], h["open"] = 0, False
        self.expect_balance(p, doc)

    @rule(i=pick, value=positive)
    def grant(self, i: int, value: int) -> None:
        p = self.players[i % 2]
        gid = self.key("grant")
        doc = self.send("/bonuses", {"idempotency_key": self.key("g"), "grant_id": gid, **self.money(i),
                                     "amount": value}, 200)
        p.bonus += value
        self.grants.append({"id": gid, "player": i % 2, "active": True})
        self.expect_balance(p, doc)

    @precondition(lambda self: self.grants)
    @rule(j=pick, value=st.none() | positive, convert=st.booleans())
    def settle_bonus(self, j: int, value: int | None, convert: bool) -> None:
        g = self.grants[j % len(self.grants)]
        p = self.players[g["player"]]
        path = f"/bonuses/{g['id']}/{'convert' if convert else 'forfeit'}"
        body = {"idempotency_key": self.key("settle"), "amount": value}
        if not g["active"]:
            self.send(path, body, 409, "grant-closed")
            return
        doc = self.send(path, body, 200)
        moved = min(p.bonus if value is None else value, p.bonus)
        assert doc["amount"] == moved
        p.bonus -= moved
        if convert:
            p.cash += moved
        g["active"] = False
        self.expect_balance(p, doc)

    @rule(i=pick, magnitude=positive, credit=st.booleans())
    def adjust(self, i: int, magnitude: int, credit: bool) -> None:
        value = magnitude if credit else -magnitude
        p = self.players[i % 2]
        body = {"idempotency_key": self.key("adj"), **self.money(i), "amount": value, "reason": "correction"}
        if p.cash + value < 0:
            self.send("/adjustments", body, 402, "insufficient-funds")
            return
        doc = self.send("/adjustments", body, 200)
        p.cash += value
        self.expect_balance(p, doc)

    # -- replays -------------------------------------------------------------------------------
    @precondition(lambda self: self.answered)
    @rule(j=pick)
    def replay(self, j: int) -> None:
        path, body, doc = self.answered[j % len(self.answered)]
        r = self.h.call("POST", path, body)
        assert r.status_code == 200 and r.json() == doc, r.text

    @precondition(lambda self: self.answered)
    @rule(j=pick)
    def conflicting_replay(self, j: int) -> None:
        path, body, _ = self.answered[j % len(self.answered)]
        changed = {**body, "amount": (body.get("amount") or 0) + 1}
        if "amount" not in body:  # void, rollback: change what they point at
            changed = {**body, "bet_idempotency_key": "other"} if "bet_idempotency_key" in body else None
        if changed is None:
            path = path.replace("/void", "/post")
            changed = body
        r = self.h.call("POST", path, changed)
        assert r.status_code == 409 and slug(r) == "duplicate-transaction", r.text

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def ledger_is_consistent(self) -> None:
        report = self.h.call("GET", "/reconciliation").json()
        assert report["ok"], report["breaches"]
        for p in self.players:
            got = self.h.call("GET", f"/players/{p.id}/balances/EUR").json()
            assert got == {"currency": "EUR", "cash": p.cash, "bonus": p.bonus, "withdrawal_hold": p.hold}


def test_wallet_state_machine(new_database: Any, nats_server: Any) -> None:
    app = build_app(WalletSettings(database_url=new_database("wallet_sm"), nats_url=nats_server.url, house_shards=3,
                                   hold_sweep_seconds=3600))
    loop = asyncio.new_event_loop()
    ctx = running(app)
    try:
        client = loop.run_until_complete(ctx.__aenter__())
        WalletMachine.h = Harness(loop, app, client)
        run_state_machine_as_test(WalletMachine, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True, database=None, deadline=None,
            suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.reuse, Phase.generate]))
    finally:
        loop.run_until_complete(ctx.__aexit__(None, None, None))
        loop.close()
