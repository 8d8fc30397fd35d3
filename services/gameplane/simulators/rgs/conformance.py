"""The provider conformance kit: an adversarial suite against a platform's canonical seamless-wallet API.

    gameplane providers conformance --url http://127.0.0.1:8000 --provider rgs --bootstrap \\
        --wallet-url http://127.0.0.1:8002

Each check plays like a studio that misbehaves (or a network that does) and then asks the
platform for the balance, so a check passes only when the rule held *and* the money is right.
The kit needs fresh player sessions with some balance: `--bootstrap` registers players through
the gateway, credits a test deposit through the wallet's internal API (service token) and
launches the game; `--token` uses sessions you created yourself (checks that need more than one
session then fail with a note saying so). The free-spin checks need the platform to award spins
(`--bootstrap` has games award them as the bonus service would, after making the grant at the
wallet); the studio's own award API is not exercised by the kit, only what the platform answers.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gameplane.contracts.games import now_timestamp
from gameplane.kit.keys import SigningKey
from gameplane.simulators.rgs.client import PlatformClient, new_id

# A session factory returns the token of a freshly launched session for a player holding some
# balance; `ttl_seconds` asks for a short-lived session (for the expiry check).
SessionFactory = Callable[[int | None], Awaitable[str]]
# An award factory has the platform grant free spins (a FreeSpinAward body, gameplane.contracts.games:
# the grant behind it made first when new) and answers the platform's reply; the same body again is
# a repeat of the same award.
AwardFactory = Callable[[dict[str, Any]], Awaitable["Reply"]]


class CheckFailed(AssertionError):
    pass


@dataclass
class Reply:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def code(self) -> str:
        return str(self.body.get("code") or str(self.body.get("type", "")).rsplit("/", 1)[-1])

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.code or ''} {self.body.get('detail') or ''}".strip()


@dataclass
class Player:
    token: str
    currency: str
    game_id: str
    player_id: str = ""


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str
    seconds: float


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


@dataclass
class Kit:
    client: PlatformClient
    new_session: SessionFactory
    stake: int = 10
    expiry_ttl: int = 2
    parallel: int = 8
    notes: list[str] = field(default_factory=list)
    awards: AwardFactory | None = None

    # ---- protocol helpers -----------------------------------------------------------------------

    async def send(self, operation: str, payload: dict[str, Any], *, timestamp: str | None = None,
                   signature: str | None = None, body: bytes | None = None,
                   signed_operation: str | None = None) -> Reply:
        payload = {"request_id": new_id("req"), **payload}
        raw = body if body is not None else json.dumps(payload, separators=(",", ":")).encode()
        resp = await self.client.send_raw(operation, raw, signature, timestamp=timestamp,
                                          signed_operation=signed_operation)
        try:
            data = resp.json()
        except ValueError:
            data = {"raw": resp.text[:200]}
        return Reply(resp.status_code, data if isinstance(data, dict) else {"raw": data})

    async def player(self, ttl: int | None = None) -> Player:
        token = await self.new_session(ttl)
        r = await self.send("authenticate", {"token": token})
        expect(r.ok, f"authenticate of a fresh session refused: {r}")
        return Player(token, str(r.body["currency"]), str(r.body.get("game_id") or ""), str(r.body["player_id"]))

    async def balance(self, p: Player) -> int:
        r = await self.send("balance", {"token": p.token})
        expect(r.ok and isinstance(r.body.get("balance"), int), f"balance refused: {r}")
        return int(r.body["balance"])

    def bet_payload(self, p: Player, amount: int | None = None, *, tx: str | None = None,
                    round_id: str | None = None) -> dict[str, Any]:
        return {"token": p.token, "transaction_id": tx or new_id("bet"), "round_id": round_id or new_id("rnd"),
                "game_id": p.game_id, "amount": self.stake if amount is None else amount, "currency": p.currency}

    def win_payload(self, p: Player, round_id: str, amount: int, *, tx: str | None = None,
                    closed: bool = True) -> dict[str, Any]:
        return {"token": p.token, "transaction_id": tx or new_id("win"), "round_id": round_id, "game_id": p.game_id,
                "amount": amount, "currency": p.currency, "round_closed": closed}

    def rollback_payload(self, p: Player, bet_tx: str, *, tx: str | None = None,
                         round_id: str | None = None) -> dict[str, Any]:
        return {"token": p.token, "transaction_id": tx or new_id("rb"), "bet_transaction_id": bet_tx,
                "round_id": round_id, "game_id": p.game_id}

    async def must(self, operation: str, payload: dict[str, Any]) -> Reply:
        r = await self.send(operation, payload)
        expect(r.ok, f"a valid {operation} was refused: {r}")
        expect(isinstance(r.body.get("balance"), int), f"{operation} answer carries no balance: {r.body}")
        return r

    def refused(self, r: Reply, code: str, what: str, balance: int | None = None) -> None:
        expect(400 <= r.status < 500, f"{what}: expected a refusal `{code}`, got {r}")
        expect(r.code == code, f"{what}: expected `{code}`, got {r}")
        if balance is not None:
            expect(r.body.get("balance") == balance,
                   f"{what}: refusal must carry the balance {balance}, carried {r.body.get('balance')!r}")

    # ---- the checks -----------------------------------------------------------------------------

    async def check_bad_signature(self, p: Player) -> str:
        before = await self.balance(p)
        payload = self.bet_payload(p)
        body = json.dumps({"request_id": new_id("req"), **payload}).encode()
        r = await self.send("bet", payload, signature="0" * 64)
        self.refused(r, "invalid-signature", "bet with a forged signature")
        tampered = body.replace(f'"amount": {self.stake}'.encode(), f'"amount": {self.stake * 2}'.encode())
        ts = now_timestamp()
        r = await self.send("bet", payload, body=tampered, timestamp=ts, signature=self.client.sign("bet", ts, body))
        self.refused(r, "invalid-signature", "bet whose body changed after signing")
        r = await self.send("bet", payload, signature="")
        self.refused(r, "invalid-signature", "unsigned bet")
        expect(await self.balance(p) == before, "money moved on a badly signed request")
        # Nothing of the refused requests may have been recorded: the same transaction signed now is new.
        ok = await self.must("bet", payload)
        expect(ok.body["balance"] == before - self.stake, f"properly signed bet debited {before - ok.body['balance']}")
        await self.must("rollback", self.rollback_payload(p, payload["transaction_id"]))
        return "forged, tampered and missing signatures refused before any effect"

    async def check_other_endpoint(self, p: Player) -> str:
        before = await self.balance(p)
        bet = {"request_id": new_id("req"), **self.bet_payload(p)}
        body = json.dumps(bet, separators=(",", ":")).encode()
        ts = now_timestamp()
        sig = self.client.sign("bet", ts, body)
        first = await self.client.send_raw("bet", body, sig, timestamp=ts)
        expect(first.status_code == 200, f"a valid bet was refused: HTTP {first.status_code} {first.text[:200]}")
        # The same signed bytes at /win would pay the stake back as a win, at /rollback refund it.
        for other in ("win", "rollback"):
            resp = await self.client.send_raw(other, body, sig, timestamp=ts)
            r = Reply(resp.status_code, resp.json())
            self.refused(r, "invalid-signature", f"a signed bet body replayed at /{other}")
        win = {"request_id": new_id("req"), **self.win_payload(p, bet["round_id"], self.stake * 100)}
        raw = json.dumps(win, separators=(",", ":")).encode()
        r = await self.send("win", win, body=raw, signed_operation="bet")
        self.refused(r, "invalid-signature", "a win signed for the bet endpoint")
        expect(await self.balance(p) == before - self.stake, "a body signed for another endpoint moved money")
        await self.must("win", self.win_payload(p, bet["round_id"], 0))
        return "a signed body is refused at any endpoint but its own"

    async def check_clock_skew(self, p: Player) -> str:
        before = await self.balance(p)
        payload = self.bet_payload(p)
        for delta in (-3600, 3600):
            r = await self.send("bet", payload, timestamp=str(int(time.time()) + delta))
            self.refused(r, "stale-request", f"bet stamped {delta:+d} s away")
        for stamp, what in (("", "an empty"), ("yesterday", "a malformed")):
            r = await self.send("bet", payload, timestamp=stamp)
            self.refused(r, "invalid-signature", f"bet with {what} timestamp")
        expect(await self.balance(p) == before, "money moved on a stale or unstamped request")
        ok = await self.must("bet", payload)
        expect(ok.body["balance"] == before - self.stake, "fresh retry of a stale bet debited the wrong amount")
        await self.must("rollback", self.rollback_payload(p, payload["transaction_id"]))
        return "requests ±1 h off, unstamped or badly stamped refused; the fresh retry accepted"

    async def check_duplicates(self, p: Player) -> str:
        before = await self.balance(p)
        payload = {"request_id": new_id("req"), **self.bet_payload(p)}
        first = await self.must("bet", payload)
        again = await self.must("bet", payload)  # the same request
        expect(again.body == first.body, f"a repeated request got a different answer: {first.body} vs {again.body}")
        retry = await self.must("bet", {**payload, "request_id": new_id("req")})  # same transaction
        expect(retry.body.get("balance") == first.body["balance"],
               f"a repeated transaction must answer the original balance {first.body['balance']}, "
               f"got {retry.body.get('balance')}")
        expect(await self.balance(p) == before - self.stake, "a duplicated bet was debited twice")
        win = self.win_payload(p, payload["round_id"], self.stake * 3)
        w1 = await self.must("win", win)
        w2 = await self.must("win", {**win, "request_id": new_id("req")})
        expect(w2.body.get("balance") == w1.body["balance"], "a repeated win answered a different balance")
        expect(await self.balance(p) == before + self.stake * 2, "a duplicated win was credited twice")
        return "repeated requests and transactions answered identically, money moved once"

    async def check_conflicting_duplicates(self, p: Player) -> str:
        before = await self.balance(p)
        payload = self.bet_payload(p)
        await self.must("bet", payload)
        r = await self.send("bet", {**payload, "amount": self.stake * 2})
        self.refused(r, "duplicate-transaction", "same transaction id with another amount", before - self.stake)
        req = new_id("req")
        other = self.bet_payload(p)
        await self.must("bet", {**other, "request_id": req})
        r = await self.send("bet", {**self.bet_payload(p), "request_id": req})
        expect(400 <= r.status < 500, f"a request id reused for another bet was accepted: {r}")
        expect(await self.balance(p) == before - 2 * self.stake, "a conflicting duplicate moved money")
        for tx in (payload["transaction_id"], other["transaction_id"]):
            await self.must("rollback", self.rollback_payload(p, tx))
        return "conflicting duplicates refused as duplicate-transaction with the balance"

    async def check_late_rollbacks(self, p: Player) -> str:
        before = await self.balance(p)
        bet = self.bet_payload(p)
        rb = self.rollback_payload(p, bet["transaction_id"], round_id=bet["round_id"])
        first = await self.must("rollback", rb)
        expect(first.body["balance"] == before, "rollback of an unseen bet moved money")
        await self.must("rollback", {**rb, "request_id": new_id("req")})
        r = await self.send("bet", bet)
        self.refused(r, "bet-rolled-back", "the bet arriving after its rollback", before)
        expect(await self.balance(p) == before, "a rolled-back bet was applied late")
        # An ordinary rollback, repeated, refunds once.
        bet2 = self.bet_payload(p)
        await self.must("bet", bet2)
        rb2 = self.rollback_payload(p, bet2["transaction_id"])
        await self.must("rollback", rb2)
        await self.must("rollback", {**rb2, "request_id": new_id("req")})
        expect(await self.balance(p) == before, "a repeated rollback refunded twice (or not at all)")
        return "rollback of an unseen bet remembered; the late bet refused; repeats refund once"

    async def check_rollback_after_win(self, p: Player) -> str:
        before = await self.balance(p)
        bet = self.bet_payload(p)
        await self.must("bet", bet)
        await self.must("win", self.win_payload(p, bet["round_id"], self.stake * 2))
        r = await self.send("rollback", self.rollback_payload(p, bet["transaction_id"], round_id=bet["round_id"]))
        self.refused(r, "round-settled", "rollback of a bet whose round paid out", before + self.stake)
        expect(await self.balance(p) == before + self.stake, "a bet of a paid round was refunded")
        return "rollback after the payout refused; balance kept"

    async def check_win_after_expiry(self, p: Player) -> str:
        short = await self.player(self.expiry_ttl)
        before = await self.balance(short)
        open_bet, open_bet2 = self.bet_payload(short), self.bet_payload(short)
        await self.must("bet", open_bet)
        await self.must("bet", open_bet2)
        await asyncio.sleep(self.expiry_ttl + 1.5)
        r = await self.send("bet", self.bet_payload(short))
        self.refused(r, "session-expired", "bet after the session expired", before - 2 * self.stake)
        w = await self.send("win", self.win_payload(short, open_bet["round_id"], self.stake * 5))
        expect(w.ok, f"win after expiry refused (the money is owed): {w}")
        rb = await self.send("rollback", self.rollback_payload(short, open_bet2["transaction_id"]))
        expect(rb.ok, f"rollback after expiry refused: {rb}")
        expect(await self.balance(short) == before + self.stake * 4, "settlement after expiry moved the wrong amount")
        return "bets refused after expiry; the win and the rollback accepted"

    async def check_closed_round(self, p: Player) -> str:
        before = await self.balance(p)
        bet = self.bet_payload(p)
        await self.must("bet", bet)
        await self.must("win", self.win_payload(p, bet["round_id"], 0))
        r = await self.send("bet", self.bet_payload(p, round_id=bet["round_id"]))
        self.refused(r, "round-closed", "bet on a closed round", before - self.stake)
        r = await self.send("win", self.win_payload(p, bet["round_id"], self.stake))
        expect(400 <= r.status < 500, f"a second win on a closed round was accepted: {r}")
        expect(await self.balance(p) == before - self.stake, "a closed round took money")
        return "bets and wins on a closed round refused"

    async def check_parallel_debits(self, p: Player) -> str:
        fresh = await self.player()
        start = await self.balance(fresh)
        amount = start // 4 + 1
        expect(amount >= self.stake, f"the bootstrap balance {start} is too small for this check")
        bets = [self.bet_payload(fresh, amount) for _ in range(self.parallel)]
        replies = await asyncio.gather(*(self.send("bet", b) for b in bets))
        accepted = [b for b, r in zip(bets, replies, strict=True) if r.ok]
        refused = [r for r in replies if not r.ok]
        expect(len(accepted) == 3, f"{len(accepted)} of {self.parallel} parallel bets of {amount} on a balance of "
                                   f"{start} were accepted; exactly 3 fit")
        for r in refused:
            self.refused(r, "insufficient-funds", "parallel bet beyond the balance")
            expect(isinstance(r.body.get("balance"), int) and r.body["balance"] >= 0,
                   f"insufficient-funds must carry a non-negative balance: {r.body}")
        after = await self.balance(fresh)
        expect(after == start - 3 * amount, f"balance {after} after 3 parallel debits of {amount} from {start}")
        twin = self.bet_payload(fresh, self.stake)
        twins = await asyncio.gather(*(self.send("bet", {**twin, "request_id": new_id("req")}) for _ in range(6)))
        expect(all(t.ok for t in twins), f"parallel copies of one bet refused: {[str(t) for t in twins if not t.ok]}")
        expect(await self.balance(fresh) == after - self.stake, "parallel copies of one bet debited more than once")
        for b in [*accepted, twin]:
            await self.must("rollback", self.rollback_payload(fresh, b["transaction_id"]))
        expect(await self.balance(fresh) == start, "rollbacks did not restore the balance")
        return f"{self.parallel} parallel debits: 3 accepted, the rest insufficient-funds; no overdraft"

    # ---- free spins (the platform awards them; the studio reports their wins with the award id) ---

    def award_body(self, p: Player, *, spins: int = 2, ttl: float = 3600) -> dict[str, Any]:
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        return {"award_id": new_id("award"), "grant_id": new_id("kit-grant"), "player_id": p.player_id,
                "currency": p.currency, "game_id": p.game_id, "spins": spins, "stake": self.stake,
                "expires_at": expires.isoformat()}

    async def award(self, p: Player, **kw: Any) -> dict[str, Any]:
        if self.awards is None:
            raise CheckFailed("free-spin checks need the platform to award spins: use --bootstrap")
        body = self.award_body(p, **kw)
        r = await self.awards(body)
        expect(r.ok, f"a valid free-spin award was refused: {r}")
        return body

    def free_win_payload(self, p: Player, award_id: str, amount: int, *, tx: str | None = None) -> dict[str, Any]:
        return {**self.win_payload(p, new_id("frnd"), amount, tx=tx), "free_spin_award_id": award_id}

    async def check_free_spin_award(self, p: Player) -> str:
        if self.awards is None:
            raise CheckFailed("free-spin checks need the platform to award spins: use --bootstrap")
        body = self.award_body(p, spins=3)
        first = await self.awards(body)
        expect(first.ok, f"a valid free-spin award was refused: {first}")
        expect(first.body.get("state") == "awarded" and first.body.get("spins") == 3
               and first.body.get("spins_played") == 0, f"a new award answered {first.body}")
        again = await self.awards(body)
        expect(again.ok and again.body == first.body, f"the same award repeated answered {again} vs {first.body}")
        other = await self.awards({**body, "spins": 4})
        expect(400 <= other.status < 500, f"other terms under an awarded id were accepted: {other}")
        return "award accepted; its repeat answered the same; other terms under its id refused"

    async def check_free_spin_win(self, p: Player) -> str:
        fresh = await self.player()
        before = await self.balance(fresh)
        award = await self.award(fresh, spins=2)
        r = await self.send("win", self.free_win_payload(fresh, award["award_id"], self.stake * 3))
        expect(r.ok, f"the win of a free spin (no bet) was refused: {r}")
        expect(r.body.get("balance") == before + self.stake * 3,
               f"a free-spin win of {self.stake * 3} answered the balance {r.body.get('balance')} from {before}")
        zero = await self.send("win", self.free_win_payload(fresh, award["award_id"], 0))
        expect(zero.ok, f"a free spin that won nothing was refused: {zero}")
        expect(await self.balance(fresh) == before + self.stake * 3, "free-spin wins moved the wrong amount")
        return "free-spin wins without a bet credited (a zero win accepted)"

    async def check_free_spin_replay(self, p: Player) -> str:
        fresh = await self.player()
        before = await self.balance(fresh)
        award = await self.award(fresh, spins=2)
        payload = {"request_id": new_id("req"), **self.free_win_payload(fresh, award["award_id"], self.stake * 2)}
        first = await self.must("win", payload)
        again = await self.must("win", payload)
        expect(again.body == first.body, f"a repeated free-spin win got another answer: {again.body}")
        retry = await self.must("win", {**payload, "request_id": new_id("req")})
        expect(retry.body.get("balance") == first.body["balance"], "a repeated free-spin transaction answered "
               f"{retry.body.get('balance')}, not its original balance {first.body['balance']}")
        r = await self.send("win", {**payload, "request_id": new_id("req"), "amount": self.stake * 9})
        self.refused(r, "duplicate-transaction", "the same free-spin transaction with another amount")
        expect(await self.balance(fresh) == before + self.stake * 2, "a replayed free-spin win was credited twice")
        # the replays counted one spin: the award's second spin still plays
        await self.must("win", self.free_win_payload(fresh, award["award_id"], 0))
        return "replayed free-spin wins answered identically, credited once, counted once"

    async def check_free_spins_exhausted(self, p: Player) -> str:
        fresh = await self.player()
        before = await self.balance(fresh)
        award = await self.award(fresh, spins=2)
        await self.must("win", self.free_win_payload(fresh, award["award_id"], 0))  # a zero win counts
        await self.must("win", self.free_win_payload(fresh, award["award_id"], self.stake))
        r = await self.send("win", self.free_win_payload(fresh, award["award_id"], self.stake * 5))
        self.refused(r, "free-spins-exhausted", "a third free-spin win on an award of two spins",
                     before + self.stake)
        expect(await self.balance(fresh) == before + self.stake, "a spin beyond the award was paid")
        return "the spin after the last (a zero win counted) refused as free-spins-exhausted"

    async def check_free_spin_unknown_or_expired(self, p: Player) -> str:
        fresh = await self.player()
        before = await self.balance(fresh)
        r = await self.send("win", self.free_win_payload(fresh, new_id("no-such-award"), self.stake))
        self.refused(r, "free-spin-award-not-found", "a free-spin win naming an award never made", before)
        award = await self.award(fresh, spins=2, ttl=self.expiry_ttl)
        await asyncio.sleep(self.expiry_ttl + 1.5)
        r = await self.send("win", self.free_win_payload(fresh, award["award_id"], self.stake))
        self.refused(r, "free-spin-award-expired", "a free-spin win after the award expired", before)
        expect(await self.balance(fresh) == before, "a free-spin win on an unknown or expired award was paid")
        return "wins on an unknown award and on an expired one refused, nothing paid"

    async def check_free_spin_other_player(self, p: Player) -> str:
        owner, thief = await self.player(), await self.player()
        owner_before, thief_before = await self.balance(owner), await self.balance(thief)
        award = await self.award(owner, spins=2)
        r = await self.send("win", self.free_win_payload(thief, award["award_id"], self.stake * 4))
        self.refused(r, "free-spin-award-mismatch", "a free-spin win on another player's award", thief_before)
        expect(await self.balance(thief) == thief_before and await self.balance(owner) == owner_before,
               "another player's free spins paid someone")
        ok = await self.send("win", self.free_win_payload(owner, award["award_id"], self.stake))
        expect(ok.ok, f"the owner's free-spin win was refused after another player tried the award: {ok}")
        return "another player's award refused; the owner's spins untouched"

    CHECKS: tuple[tuple[str, str], ...] = (
        ("bad signature", "check_bad_signature"),
        ("signature bound to its endpoint", "check_other_endpoint"),
        ("clock skew", "check_clock_skew"),
        ("duplicates", "check_duplicates"),
        ("conflicting duplicates", "check_conflicting_duplicates"),
        ("late rollbacks", "check_late_rollbacks"),
        ("rollback after win", "check_rollback_after_win"),
        ("win after session expiry", "check_win_after_expiry"),
        ("bet on closed round", "check_closed_round"),
        ("parallel debits", "check_parallel_debits"),
        ("free-spin award accepted", "check_free_spin_award"),
        ("free-spin win without a bet", "check_free_spin_win"),
        ("free-spin replay", "check_free_spin_replay"),
        ("free spins exhausted", "check_free_spins_exhausted"),
        ("free-spin award unknown or expired", "check_free_spin_unknown_or_expired"),
        ("free-spin award of another player", "check_free_spin_other_player"),
    )

    async def run(self, only: list[str] | None = None) -> list[CheckResult]:
        results: list[CheckResult] = []
        try:
            main = await self.player()
        except Exception as exc:
            return [CheckResult("setup", False, f"could not open a session: {exc}", 0.0)]
        for name, method in self.CHECKS:
            if only and name not in only:
                continue
            t0 = time.perf_counter()
            try:
                detail = await getattr(self, method)(main)
                results.append(CheckResult(name, True, detail, time.perf_counter() - t0))
            except CheckFailed as exc:
                results.append(CheckResult(name, False, str(exc), time.perf_counter() - t0))
            except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
                results.append(CheckResult(name, False, f"{exc.__class__.__name__}: {exc}", time.perf_counter() - t0))
        return results


def check_names() -> list[str]:
    return [name for name, _ in Kit.CHECKS]


# ---- bootstrap through a gameplane platform ---------------------------------------------------------

def gateway_bootstrap(url: str, wallet_url: str, payments_key: SigningKey, *, game_id: str, currency: str,
                      deposit: int, transport: httpx.AsyncBaseTransport | None = None) -> SessionFactory:
    """Fresh player per session: register + log in through the gateway, a test deposit through the
    wallet's internal API (as payments would credit it: signed with payments' key), then a launch
    through the gateway."""
    from gameplane.contracts import wallet as wallet_api
    from gameplane.kit.auth import issue_service_token

    async def factory(ttl: int | None) -> str:
        email = f"conformance-{uuid.uuid4().hex[:12]}@example.com"
        password = f"Kit-{uuid.uuid4().hex}"
        async with httpx.AsyncClient(base_url=url, timeout=30, transport=transport) as gw:
            r = await gw.post("/v1/players/register", json={
                "email": email, "password": password, "date_of_birth": "1990-01-01", "country": "MT",
                "currency": currency})
            r.raise_for_status()
            r = await gw.post("/v1/players/login", json={"email": email, "password": password})
            r.raise_for_status()
            login = r.json()
            player_id = uuid.UUID(str(login["player_id"]))
            async with httpx.AsyncClient(base_url=wallet_url, timeout=30) as wallet:
                body = wallet_api.DepositRequest(idempotency_key=f"conformance:{uuid.uuid4()}", player_id=player_id,
                                                 currency=currency, amount=deposit, psp="conformance")
                token = issue_service_token(payments_key, "payments", "wallet")
                r = await wallet.post(wallet_api.PATH_DEPOSITS, json=body.model_dump(mode="json"),
                                      headers={"authorization": f"Bearer {token}"})
                r.raise_for_status()
            launch: dict[str, Any] = {"game_id": game_id, "currency": currency}
            if ttl is not None:
                launch["ttl_seconds"] = ttl
            r = await gw.post("/v1/sessions", json=launch,
                              headers={"authorization": f"Bearer {login['access_token']}"})
            r.raise_for_status()
            return str(r.json()["token"])

    return factory


def platform_awards(wallet_url: str, games_url: str, bonus_key: SigningKey, *,
                    transport: httpx.AsyncBaseTransport | None = None) -> AwardFactory:
    """Awards as the bonus service makes them (its key signs the service tokens): the grant at the
    wallet first (a free-spins grant starts at 0), then the award through games."""
    from gameplane.contracts import wallet as wallet_api
    from gameplane.contracts.games import PATH_FREE_SPINS
    from gameplane.kit.auth import issue_service_token

    async def factory(body: dict[str, Any]) -> Reply:
        grant = wallet_api.BonusGrantRequest(
            idempotency_key=f"conformance-grant:{body['grant_id']}", grant_id=body["grant_id"],
            player_id=uuid.UUID(body["player_id"]), currency=body["currency"], amount=0)
        async with httpx.AsyncClient(base_url=wallet_url, timeout=30, transport=transport) as wallet:
            r = await wallet.post(wallet_api.PATH_BONUSES, json=grant.model_dump(mode="json"), headers={
                "authorization": f"Bearer {issue_service_token(bonus_key, 'bonus', 'wallet')}"})
            if r.status_code not in (200, 201):
                return Reply(r.status_code, {"detail": f"the wallet refused the grant: {r.text[:300]}"})
        async with httpx.AsyncClient(base_url=games_url, timeout=30, transport=transport) as games:
            r = await games.post(PATH_FREE_SPINS, json=body, headers={
                "authorization": f"Bearer {issue_service_token(bonus_key, 'bonus', 'games')}"})
        data = r.json() if r.content else {}
        return Reply(r.status_code, data if isinstance(data, dict) else {"raw": data})

    return factory


def fixed_tokens(tokens: list[str]) -> SessionFactory:
    """Sessions the integrator created; one per call, in order."""
    queue = list(tokens)

    async def factory(ttl: int | None) -> str:
        if ttl is not None:
            raise CheckFailed("this check needs a short-lived session: use --bootstrap")
        if not queue:
            raise CheckFailed("not enough --token values for this check: pass more, or use --bootstrap")
        return queue.pop(0)

    return factory


# ---- CLI --------------------------------------------------------------------------------------------

def _cli() -> Any:
    import os

    import typer
    from rich.console import Console
    from rich.table import Table

    from gameplane.devtools.identities import Identities

    app = typer.Typer(help="Tools for game providers integrating with gameplane.", no_args_is_help=True,
                      rich_markup_mode=None)

    @app.command()
    def conformance(
        url: str = typer.Option(..., help="platform URL the provider calls (the gateway)"),
        provider: str = typer.Option("rgs", help="provider name on the platform"),
        secret: str | None = typer.Option(
            None, help="the provider's HMAC secret [env GP_RGS_PROVIDER_SECRET; default: the local platform's, "
                       "from <data-dir>/secrets.json]"),
        token: list[str] = typer.Option([], help="session tokens to use instead of --bootstrap"),
        bootstrap: bool = typer.Option(False, help="create players, test deposits and sessions on the platform"),
        wallet_url: str = typer.Option("http://127.0.0.1:8002", help="wallet URL for the test deposit and the "
                                       "free-spin grants (--bootstrap)"),
        games_url: str | None = typer.Option(
            None, help="games URL for the free-spin awards (--bootstrap; with --token alone the free-spin checks "
                       "fail, saying so) [default: the local platform's, from <data-dir>/secrets.json, else "
                       "http://127.0.0.1:8003]"),
        identities: Path | None = typer.Option(
            None, help="identities file whose payments key signs the deposit call (--bootstrap) [env "
                       "GP_IDENTITIES_FILE; default: the local platform's, named in <data-dir>/secrets.json]"),
        data_dir: Path | None = typer.Option(
            None, help="data dir of the local platform (`gameplane up`/`make run`) whose secrets to use "
                       "[env GAMEPLANE_DATA_DIR; default .gameplane]"),
        game: str = typer.Option("fruit-fives", help="game to launch (--bootstrap)"),
        currency: str = typer.Option("EUR", help="currency of the test players (--bootstrap)"),
        deposit: int = typer.Option(5000, help="test deposit per player in minor units (--bootstrap)"),
        stake: int = typer.Option(10, help="stake of the probing bets, minor units"),
        check: list[str] = typer.Option([], help=f"run only these checks: {', '.join(check_names())}"),
    ) -> None:
        """Attack a platform's seamless-wallet API.

        Runs the adversarial suite and prints a pass/fail table; exits 1 on any failure."""
        from gameplane.devtools import localsecrets  # a laptop's file: not in the service image

        local = localsecrets.read(data_dir)
        secret = secret or os.environ.get("GP_RGS_PROVIDER_SECRET") or \
            local.get("providers", {}).get(provider, {}).get("secret")
        if not secret:
            raise typer.BadParameter(f"no secret for provider {provider!r}: pass --secret (or run against a "
                                     f"local platform whose {localsecrets.path(data_dir)} names it)")
        named = os.environ.get("GP_IDENTITIES_FILE") or local.get("identities")
        identities = identities or (Path(named) if named else None)
        if bootstrap:
            if identities is None or not identities.exists():
                raise typer.BadParameter(f"{identities} not found: run `gameplane up` or pass --identities",
                                         param_hint="--identities")
            payments = Identities.load(identities).key("payments")
            factory = gateway_bootstrap(url, wallet_url, payments, game_id=game, currency=currency,
                                        deposit=deposit)
            games_url = games_url or local.get("services", {}).get("games") or "http://127.0.0.1:8003"
            awards = platform_awards(wallet_url, games_url, Identities.load(identities).key("bonus"))
        elif token:
            factory, awards = fixed_tokens(token), None
        else:
            raise typer.BadParameter("pass --bootstrap or at least one --token")

        async def go() -> list[CheckResult]:
            assert secret is not None
            client = PlatformClient(url, provider, secret, timeout=5.0, attempts=1)
            try:
                return await Kit(client, factory, stake=stake, awards=awards).run(check or None)
            finally:
                await client.aclose()

        results = asyncio.run(go())
        table = Table(title=f"provider conformance: {provider} @ {url}")
        table.add_column("check")
        table.add_column("result")
        table.add_column("time", justify="right")
        table.add_column("detail", overflow="fold")
        for res in results:
            table.add_row(res.name, "[green]PASS[/]" if res.passed else "[red]FAIL[/]", f"{res.seconds:.2f}s",
                          res.detail)
        console = Console()
        console.print(table)
        failed = [r for r in results if not r.passed]
        console.print(f"{len(results) - len(failed)}/{len(results)} checks passed")
        raise typer.Exit(1 if failed or not results else 0)

    return app


app = _cli()
