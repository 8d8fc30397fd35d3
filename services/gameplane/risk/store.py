"""The feature store's SQL: the decision path's one read and one write (bare asyncpg, one round
trip each), and the writes of the event consumers (in the consumer's transaction).

Read: the rule set version in force, the player's row, the windowed sums of their buckets
(aggregated by PostgreSQL over one index range of the player), their deposit methods and how many
accounts share the address and device in question.
Write: the decision, its case, the request's buckets, the address/device links and the outbox rows,
in one statement whose parts all hang on the decision's insert: a replayed reference inserts
nothing at all.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.risk.features import (
    DAY_SPAN,
    LINK_WINDOWS,
    LONG_RETENTION,
    MINUTE_SPAN,
    SHORT_RETENTION,
    SHORT_WINDOWS,
    WINDOWS,
    Snapshot,
    Totals,
    buckets_of,
    window_cutoffs,
)
from gameplane.risk.rules import WINDOW_SECONDS


def _window_sums(param: Callable[[int], str]) -> str:
    """Count and sum per window (c0, s0, c1, s1, ...) of a feature's buckets; `param(i)` names the
    cutoff of window i."""
    cols = []
    for i, w in enumerate(WINDOWS):
        cond = f"span = {MINUTE_SPAN if w in SHORT_WINDOWS else DAY_SPAN} AND start > {param(i)}"
        cols.append(f"sum(n) FILTER (WHERE {cond}) AS c{i}, sum(total) FILTER (WHERE {cond}) AS s{i}")
    return ", ".join(cols)


_SUMS = ", ".join(f"c{i}, s{i}" for i in range(len(WINDOWS)))

# $1 player, $2 ip, $3 device, $4..$8 window cutoffs (5m 1h 1d 7d 28d), $9..$11 link cutoffs (1d 7d 28d).
# Accounts sharing an address or device: this one plus the others seen there within the window.
SNAPSHOT_SQL = f"""
SELECT (SELECT max(version) FROM rule_sets),
  (SELECT json_build_array(last_deposit_amount, extract(epoch FROM last_deposit_at), wagered_since_deposit,
          won_since_deposit, extract(epoch FROM last_bet_at))
     FROM player_features WHERE player_id = $1)::text,
  (SELECT json_agg(json_build_array(feature, {_SUMS})) FROM (
     SELECT feature, {_window_sums(lambda i: f"${4 + i}")}
     FROM feature_buckets WHERE player_id = $1 AND start > $8 GROUP BY feature) w)::text,
  (SELECT json_agg(json_build_array(fingerprint, extract(epoch FROM last_seen)))
     FROM deposit_methods WHERE player_id = $1)::text,
  (SELECT json_agg(json_build_array(kind, n1, n7, n28)) FROM (
     SELECT kind,
       count(*) FILTER (WHERE player_id <> $1 AND last_seen > $9) + 1 AS n1,
       count(*) FILTER (WHERE player_id <> $1 AND last_seen > $10) + 1 AS n7,
       count(*) FILTER (WHERE player_id <> $1 AND last_seen > $11) + 1 AS n28
     FROM identity_links
     WHERE (kind = 'ip' AND value = COALESCE($2, (SELECT last_ip FROM player_features WHERE player_id = $1)))
        OR (kind = 'device' AND value = COALESCE($3, (SELECT last_device FROM player_features WHERE player_id = $1)))
     GROUP BY kind) l)::text
"""


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(float(epoch), UTC)


def snapshot_params(player_id: uuid.UUID, ip: str | None, device: str | None, now: datetime) -> list[Any]:
    cut = window_cutoffs(now)
    links = [now - timedelta(seconds=WINDOW_SECONDS[w]) for w in LINK_WINDOWS]
    return [player_id, ip, device, *(cut[w] for w in WINDOWS), *links]


def parse_snapshot(player_id: uuid.UUID, now: datetime, row: Sequence[Any]) -> tuple[int, Snapshot]:
    """(rule set version in force, snapshot) from the row of SNAPSHOT_SQL."""
    version, player, windows, methods, links = row
    p = json.loads(player) if player else [None, None, 0, 0, None]
    win: dict[tuple[str, str], Totals] = {}
    for entry in json.loads(windows) if windows else ():
        feature, values = entry[0], entry[1:]
        for i, w in enumerate(WINDOWS):
            count, total = values[2 * i], values[2 * i + 1]
            if count:
                win[(feature, w)] = Totals(int(count), int(total or 0))
    link: dict[tuple[str, str], int] = {}
    for kind, *counts in json.loads(links) if links else ():
        for w, n in zip(LINK_WINDOWS, counts, strict=True):
            link[(kind, w)] = int(n)
    snap = Snapshot(
        player_id=player_id, now=now, windows=win,
        methods={m: _ts(at) for m, at in (json.loads(methods) if methods else ())},  # type: ignore[misc]
        links=link, last_deposit_amount=p[0], last_deposit_at=_ts(p[1]), wagered_since_deposit=int(p[2] or 0),
        won_since_deposit=int(p[3] or 0), last_bet_at=_ts(p[4]))
    return int(version), snap


async def read_snapshot(conn: asyncpg.Connection | asyncpg.Pool, player_id: uuid.UUID, ip: str | None,
                        device: str | None, now: datetime) -> tuple[int, Snapshot]:
    row = await conn.fetchrow(SNAPSHOT_SQL, *snapshot_params(player_id, ip, device, now))
    assert row is not None
    return parse_snapshot(player_id, now, tuple(row))


# One statement: the decision, then (only when it was inserted) its case, its buckets, its links
# and its events. No NOTIFY: the relay finds the rows on its next poll (50 ms while events keep
# coming), batching many decisions' events in one publish instead of waking once per decision.
# $1..$14 the decision, $15 its case id or NULL, $16 the feature, $17/$18 bucket spans/starts,
# $19/$20 link kinds/values, $21..$24 outbox rows.
WRITE_DECISION_SQL = """
WITH d AS (
  INSERT INTO decisions (id, kind, reference, player_id, amount, currency, method_fingerprint, ip, device_id,
                         decision, score, rules, rules_version, decided_at, case_id)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
  ON CONFLICT (kind, reference) DO NOTHING RETURNING id),
c AS (
  INSERT INTO cases (id, decision_id, kind, reference, player_id, amount, currency, score, rules, state, opened_at)
  SELECT $15, d.id, $2, $3, $4, $5, $6, $11, $12, 'open', $14 FROM d WHERE $15::uuid IS NOT NULL),
b AS (
  INSERT INTO feature_buckets (player_id, feature, span, start, n, total)
  SELECT $4, $16, s.span, s.start, 1, $5 FROM d, unnest($17::int[], $18::timestamptz[]) AS s(span, start)
  ON CONFLICT (player_id, feature, span, start)
  DO UPDATE SET n = feature_buckets.n + 1, total = feature_buckets.total + EXCLUDED.total),
l AS (
  INSERT INTO identity_links (kind, value, player_id, first_seen, last_seen)
  SELECT k.kind, k.value, $4, $14, $14 FROM d, unnest($19::text[], $20::text[]) AS k(kind, value)
  ON CONFLICT (kind, value, player_id)
  DO UPDATE SET last_seen = GREATEST(identity_links.last_seen, EXCLUDED.last_seen)),
o AS (
  INSERT INTO outbox (id, subject, headers, payload)
  SELECT o.id, o.subject, o.headers::jsonb, o.payload::jsonb
  FROM d, unnest($21::uuid[], $22::text[], $23::text[], $24::text[]) AS o(id, subject, headers, payload))
SELECT d.id FROM d
"""

STORED_DECISION_SQL = """
SELECT id, player_id, amount, currency, decision, score, rules, rules_version, case_id
FROM decisions WHERE kind = $1 AND reference = $2
"""


@dataclass(frozen=True)
class DecisionWrite:
    decision_id: uuid.UUID
    kind: str
    reference: str
    player_id: uuid.UUID
    amount: int
    currency: str
    method_fingerprint: str | None
    ip: str | None
    device_id: str | None
    outcome: str
    score: int
    rules: list[str]
    rules_version: int
    at: datetime
    case_id: uuid.UUID | None
    outbox: list[dict[str, Any]]  # rows of gameplane.kit.outbox.staged


async def write_decision(conn: asyncpg.Connection | asyncpg.Pool, w: DecisionWrite) -> bool:
    """Store the decision and what hangs on it. False when the (kind, reference) was decided before."""
    buckets = buckets_of(w.at)
    links = [(k, v) for k, v in (("ip", w.ip), ("device", w.device_id)) if v]
    inserted = await conn.fetchrow(
        WRITE_DECISION_SQL, w.decision_id, w.kind, w.reference, w.player_id, w.amount, w.currency,
        w.method_fingerprint, w.ip, w.device_id, w.outcome, w.score, w.rules, w.rules_version, w.at, w.case_id,
        f"{w.kind}_requests", [b[0] for b in buckets], [b[1] for b in buckets],
        [k for k, _ in links], [v for _, v in links],
        [r["id"] for r in w.outbox], [r["subject"] for r in w.outbox], [r["headers"] for r in w.outbox],
        [r["payload"] for r in w.outbox])
    return inserted is not None


# ---- consumers' writes (inside the consumer's transaction) --------------------------------------

_WITHDRAW_CASE = text(
    "UPDATE cases SET state = 'withdrawn', decided_at = :at, decided_by = 'payments', "
    "reason = 'cancelled by the player before review' "
    "WHERE kind = :kind AND reference = :ref AND player_id = :p AND state = 'open'")


async def withdraw_case(s: AsyncSession, kind: str, reference: str, player_id: uuid.UUID, at: datetime) -> None:
    """What the open case reviewed was cancelled: nothing is left to decide, so it leaves the
    reviewers' queue, saying why (a decided case stays as it was)."""
    await s.execute(_WITHDRAW_CASE, {"kind": kind, "ref": reference, "p": player_id, "at": at})


_ADD_BUCKETS = text(
    "INSERT INTO feature_buckets (player_id, feature, span, start, n, total) "
    "SELECT * FROM unnest(CAST(:p AS uuid[]), CAST(:f AS text[]), CAST(:span AS int[]), "
    "CAST(:start AS timestamptz[]), CAST(:n AS int[]), CAST(:total AS bigint[])) "
    "ON CONFLICT (player_id, feature, span, start) "
    "DO UPDATE SET n = feature_buckets.n + EXCLUDED.n, total = feature_buckets.total + EXCLUDED.total")


async def add_to_buckets(s: AsyncSession, moves: Iterable[tuple[uuid.UUID, str, datetime, int]]) -> None:
    """`moves`: (player, feature, at, amount), each one occurrence. Summed per bucket first (one
    statement may touch a row once) and written in key order (concurrent consumers lock alike)."""
    sums: dict[tuple[uuid.UUID, str, int, datetime], list[int]] = defaultdict(lambda: [0, 0])
    for player, feature, at, amount in moves:
        for span, start in buckets_of(at):
            acc = sums[(player, feature, span, start)]
            acc[0] += 1
            acc[1] += amount
    if not sums:
        return
    keys = sorted(sums, key=lambda k: (str(k[0]), k[1], k[2], k[3]))
    await s.execute(_ADD_BUCKETS, {"p": [k[0] for k in keys], "f": [k[1] for k in keys],
                                   "span": [k[2] for k in keys], "start": [k[3] for k in keys],
                                   "n": [sums[k][0] for k in keys], "total": [sums[k][1] for k in keys]})


_PLAY = text(
    "INSERT INTO player_features (player_id, wagered_since_deposit, won_since_deposit, last_bet_at) "
    "SELECT * FROM unnest(CAST(:p AS uuid[]), CAST(:wagered AS bigint[]), CAST(:won AS bigint[]), "
    "CAST(:last_bet AS timestamptz[])) "
    "ON CONFLICT (player_id) DO UPDATE SET "
    "wagered_since_deposit = player_features.wagered_since_deposit + EXCLUDED.wagered_since_deposit, "
    "won_since_deposit = player_features.won_since_deposit + EXCLUDED.won_since_deposit, "
    "last_bet_at = GREATEST(player_features.last_bet_at, EXCLUDED.last_bet_at)")


async def add_play(s: AsyncSession, moves: Iterable[tuple[uuid.UUID, int, int, datetime | None]]) -> None:
    """(player, wagered, won, bet at) since the last deposit."""
    sums: dict[uuid.UUID, list[Any]] = {}
    for player, wagered, won, at in moves:
        acc = sums.setdefault(player, [0, 0, None])
        acc[0] += wagered
        acc[1] += won
        if at is not None and (acc[2] is None or at > acc[2]):
            acc[2] = at
    if not sums:
        return
    keys = sorted(sums, key=str)
    await s.execute(_PLAY, {"p": keys, "wagered": [sums[k][0] for k in keys], "won": [sums[k][1] for k in keys],
                            "last_bet": [sums[k][2] for k in keys]})


async def ensure_player(s: AsyncSession, player_id: uuid.UUID) -> None:
    await s.execute(text("INSERT INTO player_features (player_id) VALUES (:p) ON CONFLICT DO NOTHING"),
                    {"p": player_id})


async def player_row(s: AsyncSession, player_id: uuid.UUID) -> dict[str, Any]:
    """The player's row, locked for the rest of the transaction (created when missing)."""
    await ensure_player(s, player_id)
    row = (await s.execute(text("SELECT * FROM player_features WHERE player_id = :p FOR UPDATE"),
                           {"p": player_id})).mappings().one()
    return dict(row)


async def link(s: AsyncSession, player_id: uuid.UUID, kind: str, value: str, at: datetime) -> None:
    await s.execute(text(
        "INSERT INTO identity_links (kind, value, player_id, first_seen, last_seen) VALUES (:k, :v, :p, :at, :at) "
        "ON CONFLICT (kind, value, player_id) DO UPDATE SET last_seen = GREATEST(identity_links.last_seen, :at)"),
        {"k": kind, "v": value, "p": player_id, "at": at})


async def record_method(s: AsyncSession, player_id: uuid.UUID, fingerprint: str, at: datetime) -> None:
    await s.execute(text(
        "INSERT INTO deposit_methods (player_id, fingerprint, first_seen, last_seen) VALUES (:p, :f, :at, :at) "
        "ON CONFLICT (player_id, fingerprint) DO UPDATE SET last_seen = GREATEST(deposit_methods.last_seen, :at)"),
        {"p": player_id, "f": fingerprint, "at": at})


# ---- harm: many players' snapshots at once (consumers) -------------------------------------------

_HARM_WINDOWS = text(
    "SELECT player_id, feature, " + _window_sums(lambda i: f":c{i}") +
    " FROM feature_buckets WHERE player_id = ANY(CAST(:p AS uuid[])) AND start > :c4 GROUP BY player_id, feature")
_HARM_PLAYERS = text(
    "SELECT player_id, last_deposit_amount, last_deposit_at, wagered_since_deposit, won_since_deposit, last_bet_at "
    "FROM player_features WHERE player_id = ANY(CAST(:p AS uuid[]))")


async def snapshots(s: AsyncSession, players: Sequence[uuid.UUID], now: datetime) -> list[Snapshot]:
    """Snapshots of several players for harm scoring (windows and the since-deposit state)."""
    cut = window_cutoffs(now)
    params: dict[str, Any] = {"p": list(players), **{f"c{i}": cut[w] for i, w in enumerate(WINDOWS)}}
    windows: dict[uuid.UUID, dict[tuple[str, str], Totals]] = defaultdict(dict)
    for row in (await s.execute(_HARM_WINDOWS, params)).all():
        player, feature, values = row[0], row[1], row[2:]
        for i, w in enumerate(WINDOWS):
            if values[2 * i]:
                windows[player][(feature, w)] = Totals(int(values[2 * i]), int(values[2 * i + 1] or 0))
    rows = {r.player_id: r for r in (await s.execute(_HARM_PLAYERS, {"p": list(players)})).all()}
    out = []
    for player in players:
        r = rows.get(player)
        if r is None:
            out.append(Snapshot(player_id=player, now=now, windows=windows.get(player, {})))
            continue
        out.append(Snapshot(
            player_id=player, now=now, windows=windows.get(player, {}), last_deposit_amount=r.last_deposit_amount,
            last_deposit_at=r.last_deposit_at, wagered_since_deposit=r.wagered_since_deposit,
            won_since_deposit=r.won_since_deposit, last_bet_at=r.last_bet_at))
    return out


_SET_HARM = text(
    "INSERT INTO player_features (player_id, harm_score, harm_rules, harm_at) "
    "SELECT p, score, COALESCE(string_to_array(NULLIF(rules, ''), ','), '{}'), :at FROM unnest(CAST(:p AS uuid[]), "
    "CAST(:score AS smallint[]), CAST(:rules AS text[])) AS t(p, score, rules) "
    "ON CONFLICT (player_id) DO UPDATE SET harm_score = EXCLUDED.harm_score, "
    "harm_rules = EXCLUDED.harm_rules, harm_at = EXCLUDED.harm_at")


async def set_harm(s: AsyncSession, scores: Sequence[tuple[uuid.UUID, int, list[str]]], at: datetime) -> None:
    if not scores:
        return
    ordered = sorted(scores, key=lambda x: str(x[0]))
    await s.execute(_SET_HARM, {"p": [x[0] for x in ordered], "score": [x[1] for x in ordered],
                                "rules": [",".join(x[2]) for x in ordered], "at": at})


async def prune(s: AsyncSession, now: datetime) -> int:
    """Delete buckets no window reads any more."""
    result = await s.execute(text(
        "DELETE FROM feature_buckets WHERE (span = 300 AND start < :short) OR (span = 86400 AND start < :long)"),
        {"short": now - SHORT_RETENTION, "long": now - LONG_RETENTION})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
