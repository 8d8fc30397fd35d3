"""The seamless-wallet records (requests, provider transactions, rounds) in two round trips per call.

Providers' p99 budget is tight, so everything a call needs to know is read in one statement
(`known`) and everything it leaves behind is written in one statement (`settle`), both through a
bare asyncpg pool.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from gameplane.games.rules import RoundState

_KNOWN = """
SELECT
  (SELECT row_to_json(r) FROM (SELECT request_hash, operation, outcome FROM provider_requests
     WHERE provider = $1 AND request_id = $2) r) AS request,
  (SELECT row_to_json(t) FROM (SELECT request_hash, operation, answer FROM provider_transactions
     WHERE provider = $1 AND transaction_id = $3) t) AS txn,
  (SELECT row_to_json(b) FROM (SELECT operation, player_id, round_id FROM provider_transactions
     WHERE provider = $1 AND transaction_id = $4) b) AS ref,
  EXISTS (SELECT 1 FROM provider_transactions WHERE provider = $1 AND operation = 'rollback'
          AND bet_transaction_id = $3) AS tombstoned,
  (SELECT row_to_json(x) FROM (SELECT player_id, game_id, status, wins, bet_total, win_total FROM rounds
     WHERE provider = $1 AND player_id = $5 AND round_id = COALESCE($6,
       (SELECT round_id FROM provider_transactions WHERE provider = $1 AND transaction_id = $4))) x) AS round
"""

# One statement: the transaction row, its effect on the round (only when the row is new, so a
# concurrent twin of the call cannot count twice) and the answer to the request id.
_SETTLE = """
WITH args AS (
  SELECT CAST($1 AS varchar) AS provider, CAST($6 AS varchar) AS tx, CAST($3 AS varchar) AS op,
         CAST($7 AS varchar) AS tx_hash, CAST($8 AS uuid) AS player_id,
         CAST($9 AS varchar) AS round_id, CAST($10 AS varchar) AS ref, CAST($11 AS bigint) AS amount,
         CAST($12 AS varchar) AS currency, CAST($13 AS boolean) AS noop, CAST($14 AS jsonb) AS answer,
         CAST($15 AS varchar) AS game_id, CAST($16 AS boolean) AS closed, CAST($17 AS bigint) AS reserved,
         CAST($18 AS varchar) AS award_id
), txn AS (
  INSERT INTO provider_transactions (provider, transaction_id, operation, request_hash, player_id, round_id,
                                     bet_transaction_id, amount, currency, noop, answer)
  SELECT provider, tx, op, tx_hash, player_id, round_id, ref, amount, currency, noop, answer FROM args
  WHERE tx IS NOT NULL
  ON CONFLICT DO NOTHING RETURNING 1
), bet_round AS (
  INSERT INTO rounds (provider, player_id, round_id, game_id, currency, status, bet_total, win_total, wins)
  SELECT provider, player_id, round_id, game_id, currency, 'open', amount, 0, 0 FROM args
  WHERE op = 'bet' AND EXISTS (SELECT 1 FROM txn)
  ON CONFLICT (provider, player_id, round_id) DO UPDATE SET bet_total = rounds.bet_total + EXCLUDED.bet_total
  RETURNING 1
), win_round AS (
  INSERT INTO rounds (provider, player_id, round_id, game_id, currency, status, bet_total, win_total, wins, closed_at)
  SELECT provider, player_id, round_id, game_id, currency, CASE WHEN closed THEN 'closed' ELSE 'open' END,
         0, amount, 1, CASE WHEN closed THEN now() END FROM args
  WHERE op = 'win' AND EXISTS (SELECT 1 FROM txn)
  ON CONFLICT (provider, player_id, round_id) DO UPDATE SET
    win_total = rounds.win_total + EXCLUDED.win_total, wins = rounds.wins + 1,
    win_pending = rounds.win_pending - (SELECT reserved FROM args),
    status = CASE WHEN EXCLUDED.status = 'closed' THEN 'closed' ELSE rounds.status END,
    closed_at = COALESCE(rounds.closed_at, EXCLUDED.closed_at)
  RETURNING 1
), win_release AS (
  -- a twin of this win settled first: its reservation is given back all the same
  UPDATE rounds SET win_pending = rounds.win_pending - args.reserved FROM args
  WHERE args.op = 'win' AND args.reserved > 0 AND NOT EXISTS (SELECT 1 FROM txn)
    AND rounds.provider = args.provider AND rounds.player_id = args.player_id AND rounds.round_id = args.round_id
  RETURNING 1
), rollback_round AS (
  UPDATE rounds SET bet_total = rounds.bet_total - args.amount FROM args
  WHERE args.op = 'rollback' AND NOT args.noop AND EXISTS (SELECT 1 FROM txn)
    AND rounds.provider = args.provider AND rounds.player_id = args.player_id AND rounds.round_id = args.round_id
  RETURNING 1
), award_won AS (
  UPDATE free_spin_awards SET won = free_spin_awards.won + args.amount FROM args
  WHERE args.award_id IS NOT NULL AND free_spin_awards.award_id = args.award_id AND EXISTS (SELECT 1 FROM txn)
  RETURNING 1
), request AS (
  INSERT INTO provider_requests (provider, request_id, operation, request_hash, outcome)
  VALUES (CAST($1 AS varchar), CAST($2 AS varchar), CAST($3 AS varchar), CAST($4 AS varchar), CAST($5 AS jsonb))
  ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM txn) + (SELECT count(*) FROM bet_round) + (SELECT count(*) FROM win_round)
       + (SELECT count(*) FROM win_release)
       + (SELECT count(*) FROM rollback_round) + (SELECT count(*) FROM request)
       + (SELECT count(*) FROM award_won)
"""



def _obj(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return value if isinstance(value, dict) else json.loads(value)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Known:
    request: dict[str, Any] | None  # request_hash, operation, outcome
    txn: dict[str, Any] | None  # request_hash, operation, answer
    ref: dict[str, Any] | None  # the referenced bet of a rollback: operation, player_id, round_id
    tombstoned: bool  # a rollback already named this transaction as its bet
    round: RoundState | None


async def known(pool: asyncpg.Pool, *, provider: str, request_id: str, player_id: uuid.UUID | None,
                transaction_id: str | None = None, ref: str | None = None, round_id: str | None = None) -> Known:
    row = await pool.fetchrow(_KNOWN, provider, request_id, transaction_id, ref, player_id, round_id)
    assert row is not None
    rnd = _obj(row["round"])
    return Known(_obj(row["request"]), _obj(row["txn"]), _obj(row["ref"]), bool(row["tombstoned"]),
                 RoundState(uuid.UUID(str(rnd["player_id"])), rnd["game_id"], rnd["status"], rnd["wins"],
                            int(rnd["bet_total"]), int(rnd["win_total"]))
                 if rnd else None)


async def settle(pool: asyncpg.Pool, *, provider: str, request_id: str, operation: str, request_hash: str,
                 outcome: dict[str, Any], movement: dict[str, Any] | None = None) -> None:
    """Record the answer to a request and, for a money movement that happened, the transaction and
    its round (one statement, so one implicit transaction). `movement` keys: tx, tx_hash,
    player_id, round_id, ref, amount, currency, noop, answer, game_id, closed, reserved (a win's
    reservation against the round's cap, given back here), award_id (a free spin's award: its win
    is added to the award's `won` when this call recorded the transaction)."""
    m = movement or {}
    await pool.execute(
        _SETTLE, provider, request_id, operation, request_hash, json.dumps(outcome), m.get("tx"),
        m.get("tx_hash", ""), m.get("player_id"), m.get("round_id"), m.get("ref"), int(m.get("amount", 0)),
        m.get("currency", ""), bool(m.get("noop", False)), json.dumps(m.get("answer")) if m else None,
        m.get("game_id"), bool(m.get("closed", False)), int(m.get("reserved", 0)), m.get("award_id"))


# The cap's atomic gate: concurrent wins of one round update the same row, so each one sees the
# reservations of those before it (PostgreSQL re-checks the WHERE on the row it waited for).
_RESERVE_WIN = """
UPDATE rounds SET win_pending = win_pending + $4
WHERE provider = $1 AND player_id = $2 AND round_id = $3
  AND CAST(win_total AS numeric) + win_pending + $4 <= CAST(bet_total AS numeric) * $5
RETURNING 1
"""
_RELEASE_WIN = """
UPDATE rounds SET win_pending = win_pending - $4 WHERE provider = $1 AND player_id = $2 AND round_id = $3
"""


async def reserve_win(pool: asyncpg.Pool, *, provider: str, player_id: uuid.UUID, round_id: str, amount: int,
                      max_multiplier: int) -> bool:
    """Hold `amount` of the round's cap (stakes x max_multiplier) while the wallet pays it: False when
    the round's wins, paid and in flight, would pass the cap."""
    return await pool.fetchval(_RESERVE_WIN, provider, player_id, round_id, amount, max_multiplier) is not None


async def release_win(pool: asyncpg.Pool, *, provider: str, player_id: uuid.UUID, round_id: str,
                      amount: int) -> None:
    """Give back a reservation whose win was not paid (a refusal, the wallet out of reach)."""
    await pool.execute(_RELEASE_WIN, provider, player_id, round_id, amount)



_PRUNE = """
DELETE FROM provider_requests WHERE ctid = ANY (ARRAY(
  SELECT ctid FROM provider_requests WHERE created_at < now() - make_interval(secs => $1) LIMIT $2))
"""


async def prune_requests(pool: asyncpg.Pool, older_than_seconds: float, batch: int = 5000) -> int:
    """Delete request-id records older than `older_than_seconds`, in batches (short locks, short WAL
    bursts). Their money is safe without them: transaction ids are kept for good."""
    total = 0
    while True:
        status = await pool.execute(_PRUNE, float(older_than_seconds), batch)
        deleted = int(status.rsplit(" ", 1)[-1])
        total += deleted
        if deleted < batch:
            return total
