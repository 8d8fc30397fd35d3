"""A Hypothesis state machine over the wallet's HTTP API: every operation, replays and conflicting
replays, mixed at random against an independent model; after each step the model's balances and
each open grant's balance must match and the reconciliation (the invariants of ledger.md, the
receivable's and the grants': a grant's balance is the sum of its entries, the open grants hold the
bonus account, a closed grant holds nothing; the fees': only a fee moves payment_fees, and it moves
only payment_fees and psp_clearing) must be clean.

Bonus money is modelled per grant here, from the rules and not from the wallet's code: bets take
cash first, then the open grants by (priority, age); a win's bonus part (rounded down) is shared
over the round's stake per grant, each rounded down, the remainder to the largest stake (ties: the
smallest grant id); a grant closed since the bet does not get its share back; a grant's max stake
refuses a larger bet while the player holds bonus money; convert pays min(cap, balance) and closes.

Runs 40 examples of up to 100 steps, derandomized (the same sequence every run), and checks that
they made at least 2,000 steps and met every case the grants need."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from walletlib import W, caller_of

from gameplane.devtools.testing import as_service, as_staff, running
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings

# WALLET_SM_EXAMPLES lets a developer run a quick subset; CI runs the full run, at least 2,000 steps
# (Hypothesis ends an example before STEPS at times, more or less often as the run goes: 25 examples
# made 1,750 to 2,450 steps, so 40)
EXAMPLES, STEPS = int(os.environ.get("WALLET_SM_EXAMPLES", "40")), 100
MIN_STEPS = 2_000 if "WALLET_SM_EXAMPLES" not in os.environ else 0
amount = st.integers(min_value=0, max_value=500)
positive = st.integers(min_value=1, max_value=500)
pick = st.integers(min_value=0, max_value=10**6)


@dataclass
class Grant:
    id: str
    player: int
    seq: int
    balance: int
    max_stake: int | None
    priority: int
    open: bool = True


@dataclass
class Player:
    id: uuid.UUID
    cash: int = 0
    hold: int = 0
    grants: list[Grant] = field(default_factory=list)

    @property
    def bonus(self) -> int:
        return sum(g.balance for g in self.grants if g.open)

    def spend_order(self) -> list[Grant]:
        return sorted((g for g in self.grants if g.open), key=lambda g: (g.priority, g.seq))


@dataclass
class Round:
    player: int
    id: str
    stake_cash: int = 0
    stake_bonus: int = 0
    stake_grants: dict[str, int] = field(default_factory=dict)
    closed: bool = False
    paid: bool = False


@dataclass
class Bet:
    key: str
    player: int
    round: Round
    cash: int
    bonus: int
    grants: dict[str, int]
    rolled_back: bool = False


def shared(amount: int, stake: dict[str, int]) -> dict[str, int]:
    """The rule for a win's bonus part per grant (see the module docstring)."""
    total = sum(stake.values())
    if amount == 0 or total == 0:
        return {}
    parts = {g: amount * v // total for g, v in stake.items() if v}
    top = sorted(parts, key=lambda g: (-stake[g], g))[0]
    parts[top] += amount - sum(parts.values())
    return {g: v for g, v in parts.items() if v}


def with_grants(cash: int, bonus: int, grants: dict[str, int]) -> dict[str, Any]:
    return {"cash": cash, "bonus": bonus, **({"grants": grants} if grants else {})}


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
    # what the whole run exercised: the test fails if a case the grants need never came up
    seen: Counter[str] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.players = [Player(uuid.uuid4()) for _ in range(2)]
        self.rounds: list[Round] = []
        self.bets: list[Bet] = []
        self.tombstones: list[str] = []
        self.holds: list[dict[str, Any]] = []
        self.grants: list[Grant] = []
        self.answered: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.n = 0
        self.seen["examples"] += 1

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
    @initialize(amounts=st.lists(st.integers(min_value=1, max_value=120), min_size=2, max_size=3),
                max_stake=st.sampled_from([None, None, 400]))
    def start_with_grants(self, amounts: list[int], max_stake: int | None) -> None:
        """Each player starts with a few grants and no cash, so that, whatever sequence Hypothesis
        draws, bets soon draw on several grants and wins and rollbacks meet grants closed since."""
        for i in range(len(self.players)):
            for value in amounts:
                self.grant(i, value, max_stake, 0)

    @rule(i=pick, value=positive)
    def deposit(self, i: int, value: int) -> None:
        p = self.players[i % 2]
        doc = self.send("/deposits", {"idempotency_key": self.key("dep"), **self.money(i), "amount": value}, 200)
        p.cash += value
        self.expect_balance(p, doc)

    def grant_by_id(self, gid: str) -> Grant:
        return next(g for g in self.grants if g.id == gid)

    def give_back(self, moves: dict[str, int]) -> None:
        """Money for grants: an open grant takes its part; a closed one's goes back to the liability."""
        for gid, v in moves.items():
            g = self.grant_by_id(gid)
            if g.open:
                g.balance += v
            else:
                self.seen["money for a closed grant"] += 1

    @rule(i=pick, value=amount, reuse=pick)
    def bet(self, i: int, value: int, reuse: int) -> None:
        self.place(i, value, reuse)

    @precondition(lambda self: any(len([g for g in p.grants if g.open and g.balance]) > 1 for p in self.players))
    @rule(i=pick, reuse=pick, over=st.integers(min_value=1, max_value=20))
    def bet_across_grants(self, i: int, reuse: int, over: int) -> None:
        """A stake just past the player's cash and first grant: it must draw on the next ones too."""
        i = next(n for n in (i % 2, 1 - i % 2)
                 if len([g for g in self.players[n].grants if g.open and g.balance]) > 1)
        p = self.players[i]
        first = next(g for g in p.spend_order() if g.balance)
        self.place(i, min(p.cash + first.balance + over, p.cash + p.bonus), reuse)

    def place(self, i: int, value: int, reuse: int) -> None:
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
        capped = [g for g in p.spend_order() if g.max_stake is not None] if p.bonus > 0 else []
        if capped and value > min(g.max_stake for g in capped):  # type: ignore[type-var]
            strictest = min(capped, key=lambda g: g.max_stake)  # type: ignore[arg-type, return-value]
            problem = self.send("/bets", body, 403, "bonus-max-stake")
            self.seen["max stake refused"] += 1
            assert (problem["max_stake"], problem["grant_id"]) == (strictest.max_stake, strictest.id)
            return
        if value > p.cash + p.bonus:
            self.send("/bets", body, 402, "insufficient-funds")
            return
        doc = self.send("/bets", body, 200)
        if fresh:
            self.rounds.append(rnd)
        cash = min(value, p.cash)
        drawn: dict[str, int] = {}
        left = value - cash
        for g in p.spend_order():
            take = min(left, g.balance)
            if take:
                drawn[g.id] = take
                g.balance -= take
                left -= take
        assert left == 0
        self.seen["bet on several grants" if len(drawn) > 1 else "bet on one grant" if drawn else "bet"] += 1
        assert doc["split"] == with_grants(cash, value - cash, drawn)
        p.cash -= cash
        rnd.stake_cash += cash
        rnd.stake_bonus += value - cash
        for gid, v in drawn.items():
            rnd.stake_grants[gid] = rnd.stake_grants.get(gid, 0) + v
        self.bets.append(Bet(body["idempotency_key"], i % 2, rnd, cash, value - cash, drawn))
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
        per = shared(bonus, {g: v for g, v in rnd.stake_grants.items() if v})
        assert doc["split"] == with_grants(value - bonus, bonus, per)
        self.seen["win on several grants" if len(per) > 1 else "win"] += 1
        p.cash += value - bonus
        self.give_back(per)
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
            assert doc["split"] == with_grants(b.cash, b.bonus, b.grants) and not doc["noop"]
            p.cash += b.cash
            self.give_back(b.grants)
            b.round.stake_cash -= b.cash
            b.round.stake_bonus -= b.bonus
            for gid, v in b.grants.items():
                b.round.stake_grants[gid] -= v
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

    # small grants, mostly without a max stake: bets then often draw on several of them
    @rule(i=pick, value=st.integers(min_value=0, max_value=150),
          max_stake=st.sampled_from([None, None, None, 60, 300]), priority=st.integers(min_value=0, max_value=2))
    def grant(self, i: int, value: int, max_stake: int | None, priority: int) -> None:
        p = self.players[i % 2]
        gid = self.key("grant")
        doc = self.send("/bonuses", {"idempotency_key": self.key("g"), "grant_id": gid, **self.money(i),
                                     "amount": value, "max_stake": max_stake, "priority": priority}, 200)
        g = Grant(gid, i % 2, self.n, value, max_stake, priority)
        p.grants.append(g)
        self.grants.append(g)
        self.expect_balance(p, doc)

    @precondition(lambda self: self.grants)
    @rule(j=pick, value=st.none() | positive, convert=st.booleans(),
          reason=st.sampled_from([None, "expired", "expired", "cancelled", "withdrawal"]))
    def settle_bonus(self, j: int, value: int | None, convert: bool, reason: str | None) -> None:
        g = self.grants[j % len(self.grants)]
        p = self.players[g.player]
        path = f"/bonuses/{g.id}/{'convert' if convert else 'forfeit'}"
        body = {"idempotency_key": self.key("settle"), "amount": value, "reason": reason}
        if not g.open:
            self.send(path, body, 409, "grant-closed")
            return
        doc = self.send(path, body, 200)
        to_cash = min(g.balance if value is None else value, g.balance) if convert else 0
        assert doc["amount"] == (to_cash if convert else g.balance)
        assert doc["split"] == with_grants(to_cash, -g.balance, {g.id: -g.balance})
        p.cash += to_cash
        self.seen["convert" if convert else f"forfeit {reason or 'forfeited'}"] += 1
        g.balance, g.open = 0, False
        self.expect_balance(p, doc)

    @precondition(lambda self: self.grants)
    @rule(j=pick, value=amount)
    def free_spin_win(self, j: int, value: int) -> None:
        g = self.grants[j % len(self.grants)]
        p = self.players[g.player]
        body = {"idempotency_key": self.key("fs"), "player_id": str(p.id), "currency": "EUR", "amount": value,
                "award_id": f"award-{g.id}", "round_id": self.key("free"), "game_id": "g", "provider": "rgs"}
        path = f"/bonuses/{g.id}/free-spin-wins"
        if not g.open:
            self.send(path, body, 409, "grant-closed")
            return
        doc = self.send(path, body, 200)
        assert doc["split"] == with_grants(0, value, {g.id: value} if value else {})
        g.balance += value
        self.seen["free-spin win"] += 1
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

    @rule(i=pick, value=positive)
    def fee(self, i: int, value: int) -> None:
        """A PSP's fee on one of the player's payments: the platform's cost, the player's money stays."""
        p = self.players[i % 2]
        ref = self.key("fee")
        doc = self.send("/fees", {"idempotency_key": f"fee:simpsp:{ref}", **self.money(i), "amount": value,
                                  "psp": "simpsp", "psp_reference": ref, "payment_reference": f"pay-{ref}"}, 200)
        self.seen["fee"] += 1
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
        self.seen["checked"] += 1
        report = self.h.call("GET", "/reconciliation").json()
        assert report["ok"], report["breaches"]
        for p in self.players:
            got = self.h.call("GET", f"/players/{p.id}/balances/EUR").json()
            assert got == {"currency": "EUR", "cash": p.cash, "bonus": p.bonus, "withdrawal_hold": p.hold}
            listed = self.h.call("GET", f"/players/{p.id}/grants/EUR").json()
            assert {g["grant_id"]: g["balance"] for g in listed} == {g.id: g.balance for g in p.grants if g.open}


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
        seen = WalletMachine.seen
        print(dict(seen))
        # the invariant runs once before the first step of each example and after every step
        assert seen["checked"] - seen["examples"] >= MIN_STEPS, seen
        wanted = {"bet on several grants", "max stake refused", "money for a closed grant", "win on several grants",
                  "convert", "forfeit expired", "free-spin win", "fee"}
        assert wanted <= {k for k, v in WalletMachine.seen.items() if v}, WalletMachine.seen
    finally:
        loop.run_until_complete(ctx.__aexit__(None, None, None))
        loop.close()
