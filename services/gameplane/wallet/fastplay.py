"""Bets and wins in one database round trip (sql/0002_fast_play.sql), for the common case, sent in
batches (sql/0004_fast_batch.sql; called by their versioned names, now those of
sql/0009_fast_path_v4.sql, which serve bonus play with its per-grant bookkeeping too).

The Python path (`play.bet` / `play.win`) is a transaction of four round trips: BEGIN, a statement
that claims the key and locks round and accounts, one that writes everything, COMMIT. Here one
`wallet_fast_bet_v2(...)` does the same work inside the database. It either completes the operation
and returns the answer's JSON, or declines (SQLSTATE GPF01) having changed nothing: a taken key,
a protection state that matters, a round that is unknown, closed or in another currency, funds
that do not cover the stake, a zero stake, a stake above a bonus grant's max stake, a win whose
grants are not all still open. A declined (or deadlocked, or failed) operation comes
back as None and the caller runs the Python path, which owns every refusal, replay and conflict
with its exact problem.

`Batcher` sends the operations: at most `slots` transactions in flight, and whatever arrived
while they were busy goes out as the next call, one transaction, one operation per
subtransaction. A lone request on an idle wallet goes out at once, alone; under load the
per-transaction cost (round trip, snapshot, commit, WAL flush) is shared by the whole batch.
A batch whose call fails as a whole goes again one operation at a time, so one bad operation
fails only its own caller."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import asyncpg
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from gameplane.contracts.wallet import BetRequest, WinRequest
from gameplane.kit import telemetry
from gameplane.wallet import store
from gameplane.wallet.rules import Context, check_currency

log = logging.getLogger("gameplane.wallet.fastplay")
_tracer = telemetry.tracer("gameplane.wallet")

DECLINED = "GPF01"
# also safe to hand to the Python path: nothing was committed, and it retries these itself
_RETRY_ELSEWHERE = {DECLINED, *store.RETRYABLE_SQLSTATES}

FAST_PATH = Counter("gameplane_wallet_fast_path_total", "Bets, wins (one-round-trip SQL) and deposits "
                    "(gameplane.wallet.fastdeposit) by the fast path",
                    ["operation", "outcome"])  # outcome: served | declined (answered by the Python path)
_OUTCOMES = {(op, out): FAST_PATH.labels(op, out) for op in ("bet", "win") for out in ("served", "declined")}
BATCH_SIZE = Histogram("gameplane_wallet_fast_batch_size", "Bets and wins per fast-path database call",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))

# a hot-path function is called by its versioned name, whose meaning never changes (docs/upgrades.md)
_BATCH = "SELECT wallet_fast_batch_v4($1, $2)"

# (operation, its answer, the trace context of the request that submitted it)
Pending = tuple[dict[str, Any], "asyncio.Future[str]", otel_context.Context]


class Batcher:
    """At most `slots` fast-path transactions in flight; each takes up to `max_batch` of the queued
    operations, at most one per player, sorted by (currency, player) so that batches take player
    rows in one order. Every slot posts to a house shard of its own, once per batch at its end
    (see the lock order in sql/0004_fast_batch.sql): a process's concurrent batches never wait
    on each other's house rows."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], *, slots: int, max_batch: int, house_shards: int) -> None:
        self._pool = pool  # opened at the service's start, after the routes are built
        self.max_batch = max_batch
        # a random first shard: several wallet processes spread over the shards instead of all on 0, 1
        first = secrets.randbelow(house_shards)
        self._free = [(first + i) % house_shards for i in range(slots)]
        self._queue: deque[Pending] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, op: dict[str, Any]) -> asyncio.Future[str]:
        """Queue one operation (the parameters of wallet_fast_bet_v4 / _win_v4 by name, and "op"); its
        future is the answer's JSON, or '!<SQLSTATE> <message>' if it was not done."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        self._queue.append((op, future, otel_context.get_current()))
        if self._free:
            task = loop.create_task(self._drain(self._free.pop()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return future

    async def _drain(self, shard: int) -> None:
        try:
            while self._queue:
                await self._send(self._take(), shard)
        finally:
            # no await between the empty queue and here: a submit cannot slip in and find no slot
            self._free.append(shard)

    def _take(self) -> list[Pending]:
        """Up to max_batch queued operations, oldest first, one per player: a player's second
        operation waits for the next batch (its round and account rows would otherwise be locked
        out of the one order all transactions keep, see sql/0004_fast_batch.sql)."""
        batch: list[Pending] = []
        players: set[str] = set()
        later: list[Pending] = []
        # a look this far ahead at most: a queue of one player's operations costs no quadratic scan
        while self._queue and len(batch) < self.max_batch and len(later) < 4 * self.max_batch:
            pending = self._queue.popleft()
            player = pending[0]["player"]
            if player in players:
                later.append(pending)
            else:
                players.add(player)
                batch.append(pending)
        self._queue.extendleft(reversed(later))
        return batch

    async def _send(self, batch: list[Pending], shard: int) -> None:
        batch.sort(key=lambda pending: (pending[0]["currency"], pending[0]["player"]))
        BATCH_SIZE.observe(len(batch))
        try:
            # The call serves several requests: a child of the first one's span, linked to the others'.
            links = [trace.Link(span.get_span_context()) for _, _, ctx in batch[1:]
                     if (span := trace.get_current_span(ctx)).get_span_context().is_valid]
            with _tracer.start_as_current_span("wallet fast batch", context=batch[0][2], links=links,
                                               attributes={"gameplane.batch_size": len(batch)}):
                async with self._pool().acquire() as con:
                    answers: list[str] = await con.fetchval(_BATCH, json.dumps([op for op, _, _ in batch]), shard)
        except Exception as exc:
            if len(batch) > 1:
                # One operation the call as a whole could not take (text PostgreSQL cannot store,
                # say) must not fail the others: each goes again alone and gets its own answer.
                # Nothing of the batch committed, or, had the connection died in the commit, all
                # of it did and each key then answers as the replay it is.
                log.warning("a batch of %d failed (%s: %s); its operations go again one by one",
                            len(batch), type(exc).__name__, exc)
                for pending in batch:
                    await self._send([pending], shard)
                return
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future, _ in batch:
                future.cancel()
            raise
        for (_, future, _), answer in zip(batch, answers, strict=True):
            if not future.done():  # a caller that went away: its operation is done all the same
                future.set_result(answer)


def _trace_headers() -> dict[str, str]:
    headers: dict[str, str] = {}
    telemetry.inject(headers)
    return headers


async def _call(operation: str, batcher: Batcher, op: dict[str, Any]) -> bytes | None:
    try:
        answer = await batcher.submit(op)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate not in _RETRY_ELSEWHERE:
            raise
        answer = f"!{exc.sqlstate} {exc}"
    if answer.startswith("!"):
        sqlstate, _, why = answer[1:].partition(" ")
        if sqlstate in _RETRY_ELSEWHERE:
            log.debug("%s %s: %s", operation, op["key"], why)  # "fast path declined: <why>"
        else:  # only this operation's subtransaction failed; the Python path runs it on its own
            log.warning("%s %s failed on the fast path (%s %s); the Python path answers it",
                        operation, op["key"], sqlstate, why)
        _OUTCOMES[operation, "declined"].inc()
        return None
    _OUTCOMES[operation, "served"].inc()
    return answer.encode()


def _op(operation: str, req: BetRequest | WinRequest, ctx: Context, details: dict[str, Any]) -> dict[str, Any]:
    return {"op": operation, "key": req.idempotency_key, "hash": store.request_hash(operation, req),
            "player": str(req.player_id), "currency": req.currency, "amount": req.amount, "round": req.round_id,
            "game": req.game_id, "provider": req.provider, "details": details, "now": ctx.now().isoformat(),
            "tx": str(uuid.uuid4()), "event": str(uuid.uuid4()), "headers": _trace_headers()}


def bet_op(req: BetRequest, ctx: Context) -> dict[str, Any]:
    """The operation `bet` hands the Batcher."""
    check_currency(req.currency)
    details = {"round_id": req.round_id, "game_id": req.game_id, "provider": req.provider,
               **({"session_id": str(req.session_id)} if req.session_id else {})}
    return _op("bet", req, ctx, details)


def win_op(req: WinRequest, ctx: Context) -> dict[str, Any]:
    """The operation `win` hands the Batcher."""
    check_currency(req.currency)
    details = {"round_id": req.round_id, "game_id": req.game_id, "provider": req.provider,
               "close_round": req.close_round}
    return {**_op("win", req, ctx, details), "close": req.close_round}


async def bet(batcher: Batcher, req: BetRequest, ctx: Context) -> bytes | None:
    """The answer's JSON (the same document `play.bet` answers), or None: use the Python path."""
    return await _call("bet", batcher, bet_op(req, ctx))


async def win(batcher: Batcher, req: WinRequest, ctx: Context) -> bytes | None:
    """The answer's JSON (the same document `play.win` answers), or None: use the Python path."""
    return await _call("win", batcher, win_op(req, ctx))


def batch_totals() -> tuple[float, float]:
    """(batches sent, operations in them) by this process so far, from gameplane_wallet_fast_batch_size."""
    samples = {s.name: s.value for metric in BATCH_SIZE.collect() for s in metric.samples}
    return samples["gameplane_wallet_fast_batch_size_count"], samples["gameplane_wallet_fast_batch_size_sum"]
