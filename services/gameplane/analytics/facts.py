"""Facts from events, and the rollups they feed: written together, in the consumer's transaction.

A fact is appended once per event id (the kit's processed_events, and the fact table's primary key
(day, event_id) a second time: a replayed event that slips past the first lands on the second and
adds nothing to the rollups, which only sum the facts the insert returned). Each fact is dated by the
UTC day of the wallet transaction it records (`occurred_at`), as the ledger dates it.

A rollback is a fact of its own, on the rollback's own day, with the bet's stake negated: the
ledger books the reversal on the day it happens, so a day's figures agree with the ledger's day
even when the bet was placed the day before.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.analytics import metrics
from gameplane.analytics.partitions import Partitions
from gameplane.kit.db import Database

# What one rollup row sums (the migration's columns): the inputs of contracts.kpis, then the rest.
SUMS = ("stakes", "wins", "bonus_stakes", "bonus_wins", "bonus_converted", "payment_fees", "deposits",
        "withdrawals", "bonus_granted", "free_spin_wins", "bonus_forfeited", "chargebacks", "adjustments",
        "bets", "ftd")
KINDS = ("bet", "win", "rollback", "deposit", "withdrawal_held", "withdrawal_posted", "withdrawal_voided",
         "bonus_granted", "bonus_converted", "bonus_forfeited", "free_spin_win", "fee", "chargeback", "adjustment")


def day_of(at: datetime) -> date:
    return at.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class MoneyFact:
    """One wallet event as a fact: amount, cash and bonus as the event carries them."""

    event_id: uuid.UUID
    occurred_at: datetime
    kind: str
    transaction_id: uuid.UUID
    player_id: uuid.UUID
    currency: str
    amount: int
    cash: int
    bonus: int
    game_id: str = ""
    provider: str = ""
    round_id: str | None = None
    reference: str | None = None
    first_deposit: bool = False

    @property
    def day(self) -> date:
        return day_of(self.occurred_at)


def contributions(f: MoneyFact) -> dict[str, int]:
    """What one fact adds to the sums of its rollup rows (contracts.kpis says what each input means)."""
    match f.kind:
        case "bet":
            return {"stakes": f.amount, "bonus_stakes": f.bonus, "bets": 1}
        case "rollback":
            return {"stakes": -f.amount, "bonus_stakes": -f.bonus}
        case "win":
            return {"wins": f.amount, "bonus_wins": f.bonus}
        case "deposit":
            return {"deposits": f.amount, "ftd": 1 if f.first_deposit else 0}
        case "withdrawal_posted":
            return {"withdrawals": f.amount}
        case "bonus_granted":
            return {"bonus_granted": f.amount}
        case "bonus_converted":
            # cash: what became real money; the grant's rest above the cap went back to the liability
            return {"bonus_converted": f.cash, "bonus_forfeited": -f.bonus - f.cash}
        case "bonus_forfeited":
            return {"bonus_forfeited": f.amount}
        case "free_spin_win":
            return {"free_spin_wins": f.amount}
        case "fee":
            return {"payment_fees": f.amount}
        case "chargeback":
            return {"chargebacks": f.amount}
        case "adjustment":
            return {"adjustments": f.amount}
        case "withdrawal_held" | "withdrawal_voided":
            return {}  # money parked and returned: not a withdrawal until posted
    raise ValueError(f"unknown fact kind {f.kind!r}")


_COLS = ", ".join(SUMS)
_ARRAYS = ", ".join(f"CAST(:{c} AS bigint[])" for c in SUMS)
_ADD = ", ".join(f"{c} = {{t}}.{c} + EXCLUDED.{c}" for c in SUMS)

_INSERT_FACTS = text(
    "INSERT INTO money_facts (day, event_id, occurred_at, kind, transaction_id, player_id, currency, amount, cash,"
    " bonus, game_id, provider, round_id, reference) "
    "SELECT * FROM unnest(CAST(:day AS date[]), CAST(:id AS uuid[]), CAST(:at AS timestamptz[]),"
    " CAST(:kind AS text[]), CAST(:tx AS uuid[]), CAST(:player AS uuid[]), CAST(:cur AS text[]),"
    " CAST(:amount AS bigint[]), CAST(:cash AS bigint[]), CAST(:bonus AS bigint[]), CAST(:game AS text[]),"
    " CAST(:provider AS text[]), CAST(:round AS text[]), CAST(:ref AS text[])) "
    "ON CONFLICT DO NOTHING RETURNING event_id")
_UPSERT_DAY = text(
    f"INSERT INTO rollup_day (day, currency, game_id, provider, {_COLS}) "
    f"SELECT * FROM unnest(CAST(:day AS date[]), CAST(:cur AS text[]), CAST(:game AS text[]),"
    f" CAST(:provider AS text[]), {_ARRAYS}) "
    f"ON CONFLICT (day, currency, game_id, provider) DO UPDATE SET {_ADD.format(t='rollup_day')}")
_UPSERT_PLAYER_DAY = text(
    f"INSERT INTO rollup_player_day (day, currency, player_id, game_id, provider, {_COLS}) "
    f"SELECT * FROM unnest(CAST(:day AS date[]), CAST(:cur AS text[]), CAST(:player AS uuid[]),"
    f" CAST(:game AS text[]), CAST(:provider AS text[]), {_ARRAYS}) "
    f"ON CONFLICT (day, currency, player_id, game_id, provider) DO UPDATE SET {_ADD.format(t='rollup_player_day')}")
_UPSERT_ROUNDS = text(
    "INSERT INTO rounds (provider, player_id, round_id, currency, game_id, day, stake, win) "
    "SELECT * FROM unnest(CAST(:provider AS text[]), CAST(:player AS uuid[]), CAST(:round AS text[]),"
    " CAST(:cur AS text[]), CAST(:game AS text[]), CAST(:day AS date[]), CAST(:stake AS bigint[]),"
    " CAST(:win AS bigint[])) "
    "ON CONFLICT (provider, player_id, round_id) DO UPDATE SET stake = rounds.stake + EXCLUDED.stake,"
    " win = rounds.win + EXCLUDED.win, day = LEAST(rounds.day, EXCLUDED.day),"
    " game_id = CASE WHEN rounds.game_id = '' THEN EXCLUDED.game_id ELSE rounds.game_id END")

DayKey = tuple[date, str, str, str]
PlayerKey = tuple[date, str, uuid.UUID, str, str]
RoundKey = tuple[str, uuid.UUID, str]


def _columns(rows: Sequence[dict[str, int]]) -> dict[str, list[int]]:
    return {c: [r.get(c, 0) for r in rows] for c in SUMS}


async def insert(s: AsyncSession, facts: Sequence[MoneyFact]) -> list[MoneyFact]:
    """Append the facts; the ones not there before (by event id) come back."""
    if not facts:
        return []
    fresh = set((await s.execute(_INSERT_FACTS, {
        "day": [f.day for f in facts], "id": [f.event_id for f in facts], "at": [f.occurred_at for f in facts],
        "kind": [f.kind for f in facts], "tx": [f.transaction_id for f in facts],
        "player": [f.player_id for f in facts], "cur": [f.currency for f in facts],
        "amount": [f.amount for f in facts], "cash": [f.cash for f in facts], "bonus": [f.bonus for f in facts],
        "game": [f.game_id for f in facts], "provider": [f.provider for f in facts],
        "round": [f.round_id for f in facts], "ref": [f.reference for f in facts]})).scalars())
    out = []
    for f in facts:
        if f.event_id in fresh:
            fresh.discard(f.event_id)
            out.append(f)
    return out


async def roll_up(s: AsyncSession, facts: Iterable[MoneyFact]) -> None:
    """Add the facts to their rollup rows and rounds: summed per key first (one statement may touch a
    row only once), rows taken in key order so that concurrent consumers lock them in one order."""
    by_day: dict[DayKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_player: dict[PlayerKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_round: dict[RoundKey, list] = {}
    for f in facts:
        add = contributions(f)
        if not add:
            continue
        dk = (f.day, f.currency, f.game_id, f.provider)
        pk = (f.day, f.currency, f.player_id, f.game_id, f.provider)
        for col, v in add.items():
            by_day[dk][col] += v
            by_player[pk][col] += v
        metrics.count(f.currency, f.game_id, f.provider, add)
        if f.round_id and f.kind in ("bet", "win", "rollback"):
            rk = (f.provider, f.player_id, f.round_id)
            cur = by_round.setdefault(rk, [f.currency, f.game_id, f.day, 0, 0])
            cur[1] = cur[1] or f.game_id
            cur[2] = min(cur[2], f.day)
            cur[3] += add.get("stakes", 0)
            cur[4] += add.get("wins", 0)
    if by_player:
        keys = sorted(by_player, key=lambda k: (k[0], k[1], str(k[2]), k[3], k[4]))
        await s.execute(_UPSERT_PLAYER_DAY, {
            "day": [k[0] for k in keys], "cur": [k[1] for k in keys], "player": [k[2] for k in keys],
            "game": [k[3] for k in keys], "provider": [k[4] for k in keys],
            **_columns([by_player[k] for k in keys])})
        dkeys = sorted(by_day)
        await s.execute(_UPSERT_DAY, {
            "day": [k[0] for k in dkeys], "cur": [k[1] for k in dkeys], "game": [k[2] for k in dkeys],
            "provider": [k[3] for k in dkeys], **_columns([by_day[k] for k in dkeys])})
    if by_round:
        rkeys = sorted(by_round, key=lambda k: (k[0], str(k[1]), k[2]))
        vals = [by_round[k] for k in rkeys]
        await s.execute(_UPSERT_ROUNDS, {
            "provider": [k[0] for k in rkeys], "player": [k[1] for k in rkeys], "round": [k[2] for k in rkeys],
            "cur": [v[0] for v in vals], "game": [v[1] for v in vals], "day": [v[2] for v in vals],
            "stake": [v[3] for v in vals], "win": [v[4] for v in vals]})


class Ingest:
    """Facts into their day's partition (created first if it is missing), then into the rollups."""

    def __init__(self, db: Database, partitions: Partitions) -> None:
        self.db = db
        self.partitions = partitions

    async def money(self, s: AsyncSession, facts: Sequence[MoneyFact]) -> int:
        if not facts:
            return 0
        await self.partitions.ensure(self.db, "money_facts", (f.day for f in facts))
        fresh = await insert(s, facts)
        await roll_up(s, fresh)
        metrics.FACTS.labels("money").inc(len(fresh))
        if len(fresh) < len(facts):
            metrics.DUPLICATES.inc(len(facts) - len(fresh))
        newest = max(f.occurred_at for f in facts)
        metrics.note_lag(newest)
        return len(fresh)

    async def player_fact(self, s: AsyncSession, event_id: uuid.UUID, at: datetime, kind: str,
                          player_id: uuid.UUID, detail: str | None = None) -> bool:
        day = day_of(at)
        await self.partitions.ensure(self.db, "player_facts", [day])
        row = (await s.execute(text(
            "INSERT INTO player_facts (day, event_id, occurred_at, kind, player_id, detail) "
            "VALUES (:day, :id, :at, :kind, :p, :detail) ON CONFLICT DO NOTHING RETURNING event_id"),
            {"day": day, "id": event_id, "at": at, "kind": kind, "p": player_id, "detail": detail})).first()
        if row is not None:
            metrics.FACTS.labels("player").inc()
        return row is not None
