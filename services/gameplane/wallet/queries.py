"""Read side: balances, history (cursor = the last seen `seq`, newest first), one transaction."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.contracts import wallet as wallet_api
from gameplane.contracts.wallet import Balance
from gameplane.wallet import store
from gameplane.wallet.schemas import EntryView, HistoryPage, Movement, TransactionView

_COLUMNS = "id, seq, kind, idempotency_key, player_id, currency, amount, cash, bonus, reverses, details, created_at"


async def all_balances(s: AsyncSession, player_id: uuid.UUID) -> list[Balance]:
    rows = (await s.execute(text("SELECT currency, kind, balance FROM accounts WHERE owner = :o AND shard = 0 "
                                 "ORDER BY currency"), {"o": str(player_id)})).all()
    by_cur: dict[str, dict[str, int]] = {}
    for cur, kind, bal in rows:
        by_cur.setdefault(cur, {})[kind] = bal
    return [store.to_balance(c, b) for c, b in by_cur.items()]


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "seq":
            raise ValueError(prefix)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise wallet_api.INVALID_CURSOR("use the next_cursor of a previous page")


# Transactions attributed to a player that are the operator's business, not the player's money
# (a payment provider's fee): the back office sees them in the player's history, the player does not.
OPERATOR_KINDS = ("fee",)
_NOT_OPERATOR = "AND kind NOT IN (" + ", ".join(f"'{k}'" for k in OPERATOR_KINDS) + ") "


async def history(s: AsyncSession, player_id: uuid.UUID, *, cursor: str | None, limit: int,
                  currency: str | None = None, as_player: bool = False) -> HistoryPage:
    before = decode_cursor(cursor) if cursor else None
    sql = (f"SELECT {_COLUMNS} FROM transactions WHERE player_id = :p "
           + ("AND seq < :before " if before is not None else "")
           + ("AND currency = :c " if currency else "")
           + (_NOT_OPERATOR if as_player else "")
           + "ORDER BY seq DESC LIMIT :n")
    rows = (await s.execute(text(sql), {"p": player_id, "before": before, "c": currency, "n": limit + 1})).all()
    items = [TransactionView(**r._mapping) for r in rows[:limit]]
    nxt = encode_cursor(items[-1].seq) if len(rows) > limit else None
    return HistoryPage(items=items, next_cursor=nxt)


async def transaction(s: AsyncSession, tx_id: uuid.UUID, *, player_id: uuid.UUID | None = None) -> TransactionView:
    row = (await s.execute(text(f"SELECT {_COLUMNS} FROM transactions WHERE id = :id"), {"id": tx_id})).one_or_none()
    # a player asking for someone else's transaction learns nothing, not even that it exists
    if row is None or (player_id is not None and (row.player_id != player_id or row.kind in OPERATOR_KINDS)):
        raise wallet_api.TRANSACTION_NOT_FOUND(f"no transaction {tx_id}")
    entries = (await s.execute(text(
        "SELECT a.owner, a.kind, a.currency, a.shard, e.amount FROM entries e JOIN accounts a ON a.id = e.account_id "
        "WHERE e.transaction_id = :id ORDER BY e.id"), {"id": tx_id})).all()
    view = TransactionView(**row._mapping)
    view.entries = [EntryView(account=f"{e.owner}:{e.kind}:{e.currency}" + (f":{e.shard}" if e.shard else ""),
                              amount=e.amount) for e in entries]
    return view


async def movements(s: AsyncSession, prefix: str, since: datetime, until: datetime, limit: int) -> list[Movement]:
    # the prefix is matched literally (LIKE wildcards in it escaped)
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = (await s.execute(text(
        "SELECT idempotency_key, kind, player_id, currency, amount, created_at FROM transactions "
        "WHERE idempotency_key LIKE :like AND created_at >= :since AND created_at < :until ORDER BY seq LIMIT :n"),
        {"like": like, "since": since, "until": until, "n": limit})).mappings().all()
    return [Movement.model_validate(dict(r)) for r in rows]
