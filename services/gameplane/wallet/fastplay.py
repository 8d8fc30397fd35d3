"""Bets and wins in one database round trip (sql/0002_fast_play.sql), for the common case.

The Python path (`play.bet` / `play.win`) is a transaction of four round trips: BEGIN, a statement
that claims the key and locks round and accounts, one that writes everything, COMMIT. Here one
`SELECT wallet_fast_bet(...)` does the same work as a single implicit transaction. It either
completes the operation and returns the answer's JSON, or declines (SQLSTATE GPF01) having
changed nothing: a taken key, a protection state that matters, a round that is unknown, closed
or in another currency, funds that do not cover the stake, a zero stake. A declined (or
deadlocked) call returns None and the caller runs the Python path, which owns every refusal,
replay and conflict with its exact problem."""

from __future__ import annotations

import json
import logging
import uuid

import asyncpg
from prometheus_client import Counter

from gameplane.contracts.wallet import BetRequest, WinRequest
from gameplane.kit import telemetry
from gameplane.wallet import ledger, store
from gameplane.wallet.rules import Context, check_currency

log = logging.getLogger("gameplane.wallet.fastplay")

DECLINED = "GPF01"
# also safe to hand to the Python path: nothing was committed, and it retries these itself
_RETRY_ELSEWHERE = {DECLINED, "40P01", "40001"}

FAST_PATH = Counter("gameplane_wallet_fast_path_total", "Bets and wins by the one-round-trip SQL path",
                    ["operation", "outcome"])  # outcome: served | declined (answered by the Python path)
_OUTCOMES = {(op, out): FAST_PATH.labels(op, out) for op in ("bet", "win") for out in ("served", "declined")}

_BET = "SELECT wallet_fast_bet($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
_WIN = "SELECT wallet_fast_win($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"


def _trace_headers() -> str:
    headers: dict[str, str] = {}
    telemetry.inject(headers)
    return json.dumps(headers)


async def _call(operation: str, pool: asyncpg.Pool, sql: str, *args: object) -> bytes | None:
    try:
        async with pool.acquire() as con:
            answer: str = await con.fetchval(sql, *args)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate in _RETRY_ELSEWHERE:
            log.debug("%s %s: %s", operation, args[0], exc)  # "fast path declined: <why>"
            _OUTCOMES[operation, "declined"].inc()
            return None
        raise
    _OUTCOMES[operation, "served"].inc()
    return answer.encode()


async def bet(pool: asyncpg.Pool, req: BetRequest, ctx: Context) -> bytes | None:
    """The answer's JSON (the same document `play.bet` answers), or None: use the Python path."""
    check_currency(req.currency)
    details = {"round_id": req.round_id, "game_id": req.game_id, "provider": req.provider,
               **({"session_id": str(req.session_id)} if req.session_id else {})}
    return await _call(
        "bet", pool, _BET, req.idempotency_key, store.request_hash("bet", req), req.player_id, req.currency, req.amount,
        req.round_id, req.game_id, req.provider, json.dumps(details), ctx.now(), uuid.uuid4(), uuid.uuid4(),
        _trace_headers(), ledger.house_shard(req.idempotency_key, ctx.house_shards))


async def win(pool: asyncpg.Pool, req: WinRequest, ctx: Context) -> bytes | None:
    """The answer's JSON (the same document `play.win` answers), or None: use the Python path."""
    check_currency(req.currency)
    details = {"round_id": req.round_id, "game_id": req.game_id, "provider": req.provider,
               "close_round": req.close_round}
    return await _call(
        "win", pool, _WIN, req.idempotency_key, store.request_hash("win", req), req.player_id, req.currency, req.amount,
        req.round_id, req.game_id, req.provider, req.close_round, json.dumps(details), ctx.now(), uuid.uuid4(),
        uuid.uuid4(), _trace_headers(), ledger.house_shard(req.idempotency_key, ctx.house_shards))
