"""The canonical seamless-wallet core. Every dialect adapter translates into these calls.

Order inside one call: session (cached) -> everything known about the request id, transaction id,
referenced bet and round, read in one statement -> request-id replay -> transaction-id replay or
conflict -> rules (tombstone, session expiry for bets, round state, stake limits) -> the wallet
moves the money under the key `provider:transaction_id` -> answer, transaction and round are
recorded in one statement. The wallet is the
authority on money and enforces the same rules again; the local records make replays and
refusals cheap and keep the provider's view of each round.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any
from urllib.parse import quote

import asyncpg
from nats.aio.msg import Msg
from pydantic import BaseModel

from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.games import (
    BetCall,
    GameView,
    ProviderAnswer,
    ProviderRequest,
    RollbackCall,
    WinCall,
)
from gameplane.contracts.sessions import PATH_SESSION, SessionEnded, SessionView
from gameplane.games import freespins, metrics, records, rules
from gameplane.games.models import Game
from gameplane.games.rules import ProviderError
from gameplane.games.sessioncache import SessionCache
from gameplane.games.settings import GamesSettings
from gameplane.kit.app import Runtime
from gameplane.kit.db import utcnow
from gameplane.kit.events import Envelope
from gameplane.kit.http import DependencyError, ServiceClient

log = logging.getLogger("gameplane.games.seamless")


class _TtlCache:
    def __init__(self, ttl: float, size: int = 50_000) -> None:
        self.ttl = ttl
        self.size = size
        self._data: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any | None:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, value: Any, ttl: float | None = None) -> None:
        if len(self._data) >= self.size:
            self._data.clear()  # crude but bounded; entries are cheap to fetch again
        self._data[key] = (time.monotonic() + (self.ttl if ttl is None else ttl), value)


class Seamless:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.settings: GamesSettings = rt.settings  # type: ignore[assignment]
        self._sessions = SessionCache(self.settings.session_trust_seconds, self.settings.session_cache_seconds)
        if rt.bus is not None:
            rt.bus.listen(SessionEnded.subject(), self._on_session_ended)
        self._games = _TtlCache(self.settings.catalog_cache_seconds)
        self._lookups: dict[str, asyncio.Future[SessionView]] = {}

    @property
    def pool(self) -> asyncpg.Pool:
        return self.rt.database.pool

    @property
    def wallet(self) -> ServiceClient:
        client = self.rt.state.get("wallet_client")
        if client is None:
            client = ServiceClient(self.rt.name, "wallet", self.settings.endpoint("wallet"),
                                   self.rt.identity, timeout=self.settings.wallet_timeout_seconds,
                                   retries=self.settings.wallet_attempts,
                                   max_connections=self.settings.wallet_connections)
            self.rt.state["wallet_client"] = client
        return client  # type: ignore[no-any-return]

    # ---- one call --------------------------------------------------------------------------------

    async def execute(self, provider: str, operation: str, call: ProviderRequest) -> ProviderAnswer:
        """Run one canonical call; the same request id gets the same answer (or refusal) again."""
        digest = rules.request_fingerprint(operation, call)
        session = await self.session(provider, call.token)
        known = await records.known(
            self.pool, provider=provider, request_id=call.request_id, player_id=session.player_id,
            transaction_id=getattr(call, "transaction_id", None), ref=getattr(call, "bet_transaction_id", None),
            # a rollback's round is its bet's round, found through the reference
            round_id=None if operation == "rollback" else getattr(call, "round_id", None))
        if known.request is not None:
            if known.request["request_hash"] != digest or known.request["operation"] != operation:
                raise await self.refuse("request-id-reused", session,
                                        f"request {call.request_id} was a different {known.request['operation']}")
            outcome = known.request["outcome"]
            if "error" in outcome:
                raise ProviderError.from_dict(outcome["error"])
            return ProviderAnswer.model_validate(outcome["answer"])
        try:
            answer, movement = await self._dispatch(provider, operation, call, session, known)
        except ProviderError as exc:
            if not exc.transient:
                await records.settle(self.pool, provider=provider, request_id=call.request_id,
                                     operation=operation, request_hash=digest, outcome={"error": exc.to_dict()})
            raise
        except DependencyError as exc:
            raise ProviderError("dependency-unavailable", str(exc))
        await records.settle(self.pool, provider=provider, request_id=call.request_id,
                             operation=operation, request_hash=digest,
                             outcome={"answer": answer.model_dump(mode="json")}, movement=movement)
        if movement is not None and not movement["noop"]:
            labels = (provider, movement["game_id"], movement["currency"], operation)
            metrics.ROUNDS.labels(*labels).inc()
            metrics.AMOUNT.labels(*labels).inc(movement["amount"])
        return answer

    async def _dispatch(self, provider: str, operation: str, call: ProviderRequest, session: SessionView,
                        known: records.Known) -> tuple[ProviderAnswer, dict[str, Any] | None]:
        if operation == "bet" and isinstance(call, BetCall):
            return await self.bet(provider, call, session, known)
        if operation == "win" and isinstance(call, WinCall):
            return await self.win(provider, call, session, known)
        if operation == "rollback" and isinstance(call, RollbackCall):
            return await self.rollback(provider, call, session, known)
        if operation == "authenticate":
            if not session.accepts_bets(utcnow()):
                raise await self.refuse("session-expired", session)
            return self._answer(call, session, await self.playable(session.player_id, session.currency)), None
        if operation == "balance":
            return self._answer(call, session, await self.playable(session.player_id, session.currency)), None
        raise ProviderError("validation-error", f"unsupported operation {operation}")

    # ---- lookups --------------------------------------------------------------------------------

    def _epoch(self) -> int | None:
        return self.rt.bus.listening_epoch if self.rt.bus is not None else None

    async def _on_session_ended(self, msg: Msg) -> None:
        try:
            event = Envelope.model_validate_json(msg.data).open()
        except (ValueError, LookupError) as exc:
            log.warning("unreadable sessions.ended event: %s", exc)
            return
        if isinstance(event, SessionEnded):
            self._sessions.ended(event.session_id)

    async def session(self, provider: str, token: str) -> SessionView:
        cached = self._sessions.get(token, self._epoch())
        if cached is None:
            # Single flight: a burst of calls on one token waits for one lookup, not one each.
            pending = self._lookups.get(token)
            if pending is None:
                pending = asyncio.ensure_future(self._fetch_session(token))
                self._lookups[token] = pending
                pending.add_done_callback(lambda _f, t=token: self._lookups.pop(t, None))
            cached = await asyncio.shield(pending)
        if cached.provider != provider:
            raise ProviderError("invalid-token", "the token belongs to another provider")
        return cached  # type: ignore[no-any-return]

    async def _fetch_session(self, token: str) -> SessionView:
        epoch = self._epoch()  # as of before the lookup: a reconnect during it leaves the view untrusted
        try:
            resp = await self.rt.client("sessions").get(PATH_SESSION.format(token=quote(token, safe="")))
        except DependencyError as exc:
            raise ProviderError("dependency-unavailable", str(exc))
        if resp.status_code == 404:
            raise ProviderError("invalid-token", "unknown session token")
        if resp.status_code != 200:
            raise ProviderError("dependency-unavailable", f"sessions answered {resp.status_code}")
        view = resp.model(SessionView)
        self._sessions.put(view, epoch)
        return view

    async def game(self, game_id: str) -> GameView | None:
        cached = self._games.get(game_id)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        async with self.rt.database.session() as s:
            row = await s.get(Game, game_id)
        view = game_view(row) if row is not None else None
        if view is not None:
            self._games.put(game_id, view)
        return view

    async def playable(self, player_id: uuid.UUID, currency: str) -> int:
        resp = await self.wallet.get(wallet_api.PATH_BALANCE.format(player_id=player_id, currency=currency))
        if resp.status_code == 404:
            return 0
        if resp.status_code != 200:
            raise ProviderError("dependency-unavailable", f"wallet answered {resp.status_code}")
        return resp.model(wallet_api.Balance).playable

    async def refuse(self, code: str, session: SessionView, detail: str | None = None) -> ProviderError:
        """A refusal with the current balance (best effort: the refusal stands without it)."""
        try:
            balance: int | None = await self.playable(session.player_id, session.currency)
        except (ProviderError, DependencyError):
            balance = None
        return ProviderError(code, detail, balance=balance, currency=session.currency)

    async def _twin_replay(self, provider: str, digest: str, call: WinCall,
                           session: SessionView) -> ProviderAnswer | None:
        """Read again what is known of this win: a twin of it that settled meanwhile makes it a replay."""
        again = await records.known(self.pool, provider=provider, request_id=call.request_id,
                                    player_id=session.player_id, transaction_id=call.transaction_id,
                                    round_id=call.round_id)
        return await self._replay(again, digest, call, session)

    async def _replay(self, known: records.Known, digest: str, call: ProviderRequest,
                      session: SessionView) -> ProviderAnswer | None:
        """The stored answer of a transaction id seen before; a different movement under it is refused."""
        if known.txn is None:
            return None
        if known.txn["request_hash"] != digest:
            raise await self.refuse("duplicate-transaction", session,
                                    f"transaction {getattr(call, 'transaction_id', '')} was a different "
                                    f"{known.txn['operation']}")
        return ProviderAnswer.model_validate({**known.txn["answer"], "request_id": call.request_id})

    # ---- wallet ---------------------------------------------------------------------------------

    async def _move(self, path: str, body: BaseModel, session: SessionView) -> wallet_api.OperationResult:
        resp = await self.wallet.post(path, content=body.model_dump_json().encode(), idempotent=True)
        if resp.status_code in (200, 201):
            return resp.model(wallet_api.OperationResult)
        try:
            problem = resp.json()
        except ValueError:
            problem = {}
        slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
        if resp.status_code >= 500 or slug == "dependency-unavailable":
            raise ProviderError("dependency-unavailable", f"wallet answered {resp.status_code}")
        code = rules.WALLET_SLUGS.get(slug)
        if code is None:
            log.error("wallet refused %s with %s %s", path, resp.status_code, problem)
            raise await self.refuse("validation-error", session, problem.get("detail") or f"wallet refused: {slug}")
        balance = problem.get("balance")
        if isinstance(balance, dict):
            balance = int(balance.get("cash", 0)) + int(balance.get("bonus", 0))
        if isinstance(balance, int):
            raise ProviderError(code, problem.get("detail"), balance=balance, currency=session.currency)
        raise await self.refuse(code, session, problem.get("detail"))

    # ---- operations -----------------------------------------------------------------------------

    async def bet(self, provider: str, call: BetCall, session: SessionView,
                  known: records.Known) -> tuple[ProviderAnswer, dict[str, Any] | None]:
        await self._same_session(call, session)
        digest = rules.transaction_fingerprint("bet", session.player_id, call)
        replay = await self._replay(known, digest, call, session)
        if replay is not None:
            return replay, None
        if known.tombstoned:
            raise await self.refuse("bet-rolled-back", session, f"bet {call.transaction_id} was rolled back before")
        too_large = rules.amount_refusal(call.amount, call.currency)
        if too_large:
            raise await self.refuse("amount-out-of-range", session, too_large)
        if not session.accepts_bets(utcnow()):
            raise await self.refuse("session-expired", session)
        refusal = rules.bet_round_refusal(known.round, session.player_id, call.game_id)
        if refusal:
            raise await self.refuse(refusal, session, f"round {call.round_id}")
        game = await self.game(call.game_id)
        stakes = game.stakes.get(call.currency) if game is not None else None
        if stakes is not None and not stakes.min <= call.amount <= stakes.max:
            raise await self.refuse("stake-out-of-range", session,
                                    f"stake {call.amount} outside {stakes.min}..{stakes.max} {call.currency}")
        result = await self._move(wallet_api.PATH_BETS, wallet_api.BetRequest(
            idempotency_key=f"{provider}:{call.transaction_id}", player_id=session.player_id,
            currency=session.currency, amount=call.amount, round_id=call.round_id,
            game_id=call.game_id, provider=provider, session_id=session.session_id), session)
        answer = self._answer(call, session, result.balance.playable, result)
        return answer, self._movement(call.transaction_id, digest, session, answer, call.round_id, None,
                                      call.amount, result.noop, call.game_id)

    async def win(self, provider: str, call: WinCall, session: SessionView,
                  known: records.Known) -> tuple[ProviderAnswer, dict[str, Any] | None]:
        # No expiry check: the money is owed to the player even after the session ended.
        await self._same_session(call, session)
        digest = rules.transaction_fingerprint("win", session.player_id, call)
        replay = await self._replay(known, digest, call, session)
        if replay is not None:
            return replay, None
        too_large = rules.amount_refusal(call.amount, call.currency)
        if too_large:
            raise await self.refuse("amount-out-of-range", session, too_large)
        if call.free_spin_award_id is not None:
            return await self.free_spin_win(provider, call, session, known, digest)
        refusal = rules.win_round_refusal(known.round, session.player_id)
        if refusal:
            raise await self.refuse(refusal, session, f"round {call.round_id}")
        game = await self.game(call.game_id)
        reserved = 0
        if game is not None and known.round is not None:
            above = rules.win_cap_refusal(known.round, call.amount, game.max_win_multiplier)
            if above is None and call.amount and not await records.reserve_win(
                    self.pool, provider=provider, player_id=session.player_id, round_id=call.round_id,
                    amount=call.amount, max_multiplier=game.max_win_multiplier):
                # Other wins of the round were paid or are in flight since it was read; a twin of this
                # very win settling meanwhile is a replay, not a refusal.
                replay = await self._twin_replay(provider, digest, call, session)
                if replay is not None:
                    return replay, None
                above = "the round's wins, paid and in flight, would pass its cap"
            if above:
                raise await self.refuse("max-win-exceeded", session, above)
            reserved = call.amount
        try:
            result = await self._move(wallet_api.PATH_WINS, wallet_api.WinRequest(
                idempotency_key=f"{provider}:{call.transaction_id}", player_id=session.player_id,
                currency=session.currency, amount=call.amount, round_id=call.round_id,
                game_id=call.game_id, provider=provider, close_round=call.round_closed), session)
        except BaseException:
            if reserved:
                await records.release_win(self.pool, provider=provider, player_id=session.player_id,
                                          round_id=call.round_id, amount=reserved)
            raise
        answer = self._answer(call, session, result.balance.playable, result)
        return answer, {**self._movement(call.transaction_id, digest, session, answer, call.round_id, None,
                                         call.amount, result.noop, call.game_id, closed=call.round_closed),
                        "reserved": reserved}

    async def free_spin_win(self, provider: str, call: WinCall, session: SessionView, known: records.Known,
                            digest: str) -> tuple[ProviderAnswer, dict[str, Any] | None]:
        """The win of a free spin: no bet, the award checked and one of its spins counted, the money
        credited to the award's grant (key `provider:transaction_id`, so a replay credits once)."""
        award_id = call.free_spin_award_id
        assert award_id is not None
        row = await freespins.load(self.pool, award_id)
        award = None if row is None else rules.AwardState(
            row["provider"], uuid.UUID(str(row["player_id"])), row["game_id"], row["currency"], row["spins"],
            row["spins_played"], row["expires_at"], row["accepted"])
        refusal = rules.free_spin_refusal(award, provider=provider, player_id=session.player_id,
                                          game_id=call.game_id, currency=call.currency, now=utcnow())
        if refusal is not None and not (
                refusal[0] in ("free-spin-award-expired", "free-spins-exhausted")
                and await freespins.holds(self.pool, provider=provider, transaction_id=call.transaction_id)):
            # (a retry whose spin was held while the award allowed it is still paid: the money is owed)
            raise await self.refuse(refusal[0], session, refusal[1])
        assert row is not None
        round_refusal = rules.free_spin_round_refusal(known.round)
        if round_refusal:
            raise await self.refuse(round_refusal, session, f"round {call.round_id} is not a new free-spin round")
        game = await self.game(call.game_id)
        if game is not None and call.amount > row["stake"] * game.max_win_multiplier:
            raise await self.refuse("max-win-exceeded", session,
                                    f"a free spin at stake {row['stake']} wins at most {game.max_win_multiplier}x")
        hold = await freespins.hold_spin(self.pool, provider=provider, transaction_id=call.transaction_id,
                                         award_id=award_id)
        if hold == "none":
            # A twin of this very win may have taken the last spin and settled: that is a replay.
            replay = await self._twin_replay(provider, digest, call, session)
            if replay is not None:
                return replay, None
            latest = await freespins.load(self.pool, award_id)
            exhausted = latest is not None and latest["spins_played"] >= latest["spins"]
            raise await self.refuse("free-spins-exhausted" if exhausted else "free-spin-award-expired", session,
                                    f"award {award_id}")
        try:
            result = await self._move(
                wallet_api.PATH_FREE_SPIN_WINS.format(grant_id=quote(row["grant_id"], safe="")),
                wallet_api.FreeSpinWinRequest(
                    idempotency_key=f"{provider}:{call.transaction_id}", player_id=session.player_id,
                    currency=session.currency, amount=call.amount, award_id=award_id, round_id=call.round_id,
                    game_id=call.game_id, provider=provider), session)
        except ProviderError as exc:
            # Refused for good: the spin was not paid. A transient failure keeps it held for the retry
            # (the credit may have landed); another movement under this key is not this spin's refusal.
            if not exc.transient and exc.code != "duplicate-transaction":
                await freespins.release_spin(self.pool, provider=provider, transaction_id=call.transaction_id,
                                             award_id=award_id)
            raise
        answer = self._answer(call, session, result.balance.playable, result)
        return answer, {**self._movement(call.transaction_id, digest, session, answer, call.round_id, None,
                                         call.amount, result.noop, call.game_id, closed=call.round_closed),
                        "award_id": award_id}

    async def rollback(self, provider: str, call: RollbackCall, session: SessionView,
                       known: records.Known) -> tuple[ProviderAnswer, dict[str, Any] | None]:
        digest = rules.transaction_fingerprint("rollback", session.player_id, call)
        replay = await self._replay(known, digest, call, session)
        if replay is not None:
            return replay, None
        bet = known.ref
        if bet is not None:
            if bet["operation"] != "bet" or str(bet["player_id"]) != str(session.player_id):
                raise await self.refuse("validation-error", session,
                                        f"{call.bet_transaction_id} is not a bet of this player")
            refusal = rules.rollback_round_refusal(known.round)
            if refusal:
                raise await self.refuse(refusal, session, f"round {bet['round_id']} already paid out")
        round_id = bet["round_id"] if bet is not None else call.round_id
        result = await self._move(wallet_api.PATH_ROLLBACKS, wallet_api.RollbackRequest(
            idempotency_key=f"{provider}:{call.transaction_id}", player_id=session.player_id,
            currency=session.currency, bet_idempotency_key=f"{provider}:{call.bet_transaction_id}",
            round_id=round_id, game_id=call.game_id or session.game_id, provider=provider), session)
        answer = self._answer(call, session, result.balance.playable, result)
        return answer, self._movement(call.transaction_id, digest, session, answer, round_id,
                                      call.bet_transaction_id, result.amount, result.noop or bet is None,
                                      session.game_id)

    # ---- helpers --------------------------------------------------------------------------------

    async def _same_session(self, call: BetCall, session: SessionView) -> None:
        if call.currency.upper() != session.currency:
            raise await self.refuse("currency-mismatch", session, f"session plays in {session.currency}")
        if call.game_id != session.game_id:
            raise await self.refuse("game-mismatch", session, f"session plays {session.game_id}")

    @staticmethod
    def _answer(call: ProviderRequest, session: SessionView, balance: int,
                result: wallet_api.OperationResult | None = None) -> ProviderAnswer:
        return ProviderAnswer(
            request_id=call.request_id, player_id=session.player_id, currency=session.currency, balance=balance,
            session_id=session.session_id, game_id=session.game_id,
            transaction_id=getattr(call, "transaction_id", None),
            platform_transaction_id=result.transaction_id if result else None,
            noop=bool(result and result.noop))

    @staticmethod
    def _movement(transaction_id: str, digest: str, session: SessionView, answer: ProviderAnswer,
                  round_id: str | None, ref: str | None, amount: int, noop: bool, game_id: str,
                  closed: bool = False) -> dict[str, Any]:
        return {"tx": transaction_id, "tx_hash": digest, "player_id": session.player_id, "round_id": round_id,
                "ref": ref, "amount": amount, "currency": session.currency, "noop": noop,
                "answer": answer.model_dump(mode="json"), "game_id": game_id, "closed": closed}


def game_view(row: Game) -> GameView:
    return GameView(game_id=row.game_id, provider=row.provider, title=row.title, category=row.category,
                    rtp_bp=row.rtp_bp, volatility=row.volatility,  # type: ignore[arg-type]
                    wagering_contribution_pct=row.wagering_contribution_pct, stakes=row.stakes,
                    jurisdictions=row.jurisdictions, enabled=row.enabled, max_win_multiplier=row.max_win_multiplier,
                    updated_at=row.updated_at)

