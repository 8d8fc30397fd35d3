"""What bonus consumes (through gameplane.kit.consumer: idempotent, and catching up from the
stream after downtime) and how it turns that into grants and wagering progress.

Consumed: `players.registered` and `players.protection_changed` (bonus's copy: country,
self-exclusion, time-outs; a self-exclusion forfeits every open grant), `wallet.deposit_credited`
(deposit match), `wallet.withdrawal_held` (forfeit where the offer says so), `wallet.bet_placed` /
`wallet.win_settled` / `wallet.rolled_back` (wagering; cashback's net losses), `wallet.free_spin_won`
(free-spin wins and the spins played).

Wagering counts settled stakes: a bet is remembered (`round_bets`) and counts once its round is
closed (a `wallet.win_settled` with round_closed; a losing round closes with a win of 0). The
three event types arrive on separate durable consumers, in any order relative to each other: a
bet seen after its round's close counts at once, a rollback seen before its bet leaves a tombstone
that keeps the bet from ever counting, and a rollback seen after its bet counted takes the
contribution back while the grant is still wagering. A stake counts toward the player's oldest
grant in that currency that still needs wagering, times the contribution of the game's category.
Progress events are coalesced: one `bonus.progressed` per grant per batch of settled bets.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.bonus import grants, metrics, rules, states, wagering
from gameplane.bonus.worker import now_of, wake
from gameplane.contracts import bonus as c
from gameplane.contracts.players import PlayerRegistered, ProtectionChanged
from gameplane.contracts.wallet import (
    BetPlaced,
    DepositCredited,
    FreeSpinWon,
    RolledBack,
    WinSettled,
    WithdrawalHeld,
)
from gameplane.kit.app import Runtime
from gameplane.kit.consumer import Consumers
from gameplane.kit.events import Envelope
from gameplane.kit.outbox import staged

_TRACKED = text(
    "SELECT DISTINCT player_id, currency, 'grant' AS why FROM grants WHERE player_id = ANY(CAST(:ps AS uuid[])) "
    "AND state IN ('active', 'wagering') "
    "UNION SELECT DISTINCT player_id, currency, 'cashback' FROM opt_ins WHERE player_id = ANY(CAST(:ps AS uuid[])) "
    "AND kind = 'cashback' AND NOT settled")


async def _serialise(s: AsyncSession, players: Sequence[uuid.UUID]) -> None:
    """Bets, closes and rollbacks of one player are handled by three consumers at once: each takes
    the player's lock first (sorted, so no two batches deadlock), so that each sees what the other
    committed (a bet and its round's close in two transactions at once would otherwise both miss
    each other, and the bet would never count)."""
    await s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(p, 7)) "
                         "FROM unnest(CAST(:ps AS text[])) AS p ORDER BY p"),
                    {"ps": sorted({str(p) for p in players})})


async def _tracked(s: AsyncSession, players: Sequence[uuid.UUID]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(player, currency) pairs with an open credited grant, and those enrolled in a cashback."""
    rows = (await s.execute(_TRACKED, {"ps": [str(p) for p in set(players)]})).all()
    wagering_, cashback = set(), set()
    for p, cur, why in rows:
        (wagering_ if why == "grant" else cashback).add((str(p), cur))
    return wagering_, cashback


async def _add_play(s: AsyncSession, items: list[tuple[uuid.UUID, str, Any, int, int]]) -> None:
    for p, cur, day, staked, won in items:
        await s.execute(text(
            "INSERT INTO play_days (player_id, currency, day, staked, won) VALUES (:p, :c, :d, :s, :w) "
            "ON CONFLICT (player_id, currency, day) DO UPDATE SET staked = play_days.staked + EXCLUDED.staked, "
            "won = play_days.won + EXCLUDED.won"), {"p": p, "c": cur, "d": day, "s": staked, "w": won})


async def count_bets(rt: Runtime, s: AsyncSession, bets: list[dict[str, Any]]) -> None:
    """Apply settled, not rolled-back bets (rows of round_bets in state open, locked) to wagering."""
    if not bets:
        return
    now = now_of(rt)
    cache = rt.state["games"]
    categories = {gid: await cache.category(rt, gid) for gid in {b["game_id"] for b in bets}}
    pairs = {(str(b["player_id"]), b["currency"]) for b in bets}
    rows = (await s.execute(text(
        "SELECT grant_id, player_id, offer_id, currency, state, wagering_required, wagered, contributions, spins, "
        "spins_played FROM grants WHERE player_id = ANY(CAST(:ps AS uuid[])) AND state IN ('active', 'wagering') "
        "ORDER BY created_at, grant_id FOR UPDATE"), {"ps": sorted({p for p, _ in pairs})})).mappings().all()
    open_: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        open_[(str(r["player_id"]), r["currency"])].append(dict(r))
    touched: dict[uuid.UUID, dict[str, Any]] = {}
    marks = []
    for b in bets:
        target = next((g for g in open_.get((str(b["player_id"]), b["currency"]), ())
                       if g["wagered"] < g["wagering_required"]), None)
        added = 0
        if target is not None:
            added = wagering.contribution(int(b["amount"]), categories[b["game_id"]], target["contributions"])
            target["wagered"] += added
            touched[target["grant_id"]] = target
            metrics.WAGERING_APPLIED.inc()
        marks.append({"b": b["bet_tx"], "g": target["grant_id"] if target else None, "n": added})
    await s.execute(text("UPDATE round_bets SET state = 'counted', grant_id = :g, contributed = :n WHERE bet_tx = :b"),
                    marks)
    await _save_progress(s, list(touched.values()), now)


_SET_WAGERED = text(
    "UPDATE grants g SET wagered = v.w FROM (SELECT unnest(CAST(:ids AS uuid[])) AS id, "
    "unnest(CAST(:ws AS bigint[])) AS w) v WHERE g.grant_id = v.id")
_OUTBOX = text("INSERT INTO outbox (id, subject, headers, payload) "
               "VALUES (:id, :subject, CAST(:headers AS jsonb), CAST(:payload AS jsonb))")


async def _save_progress(s: AsyncSession, touched: list[dict[str, Any]], now: Any) -> None:
    """Write the new progress of these grants (locked) with one statement, one coalesced
    `bonus.progressed` each, and move the few whose state changes."""
    if not touched:
        return
    await s.execute(_SET_WAGERED, {"ids": [str(g["grant_id"]) for g in touched],
                                   "ws": [int(g["wagered"]) for g in touched]})
    # no NOTIFY: the relay finds the rows on its next poll (as the other hot paths do)
    await s.execute(_OUTBOX, [staged(c.Progressed(
        grant_id=g["grant_id"], player_id=g["player_id"], offer_id=g["offer_id"], currency=g["currency"], at=now,
        wagered=int(g["wagered"]), required=int(g["wagering_required"])), producer=grants.PRODUCER)
        for g in touched])
    for g in touched:
        if states.after_progress(g["state"], int(g["wagering_required"]), int(g["wagered"]), g["spins"],
                                 int(g["spins_played"])) != g["state"]:
            await grants.progress(s, g, now)


async def _close_open_grants(s: AsyncSession, player_id: uuid.UUID, currency: str | None, reason: str, now: Any,
                             *, forfeit_on_withdrawal: bool = False) -> bool:
    """Forfeit the player's open grants (of one currency, or all; only those whose offer forfeits on
    withdrawal, when asked); the wallet forfeit each one owes is made by the worker."""
    ids = (await s.execute(text(
        "SELECT grant_id FROM grants WHERE player_id = :p AND (CAST(:c AS text) IS NULL OR currency = :c) "
        "AND (forfeit_on_withdrawal OR NOT :fow) AND state IN ('issued', 'active', 'wagering') ORDER BY created_at"),
        {"p": player_id, "c": currency, "fow": forfeit_on_withdrawal})).scalars().all()
    closed = False
    for gid in ids:
        row = await grants.lock(s, gid)
        if row is not None and row["state"] in ("issued", "active", "wagering"):
            await grants.close(s, row, "forfeited", reason, now)
            closed = True
    return closed


def build_consumers(holder: dict[str, Runtime]) -> Consumers:
    """`holder["rt"]`: the runtime, set once it exists (the consumers are handed to it)."""
    consumers = Consumers()

    @consumers.on(PlayerRegistered)
    async def on_registered(s: AsyncSession, e: PlayerRegistered, env: Envelope) -> None:
        await s.execute(text(
            "INSERT INTO players (player_id, country, currency, registered_at) VALUES (:p, :co, :cu, :at) "
            "ON CONFLICT (player_id) DO UPDATE SET country = EXCLUDED.country, currency = EXCLUDED.currency, "
            "registered_at = EXCLUDED.registered_at"),
            {"p": e.player_id, "co": e.country, "cu": e.currency, "at": e.registered_at})

    @consumers.on(ProtectionChanged)
    async def on_protection(s: AsyncSession, e: ProtectionChanged, env: Envelope) -> None:
        # snapshots can arrive out of order: only a newer revision replaces what we hold
        applied = (await s.execute(text(
            "INSERT INTO players (player_id, protection_revision, self_excluded_until, timeout_until) "
            "VALUES (:p, :rev, :x, :t) ON CONFLICT (player_id) DO UPDATE SET "
            "protection_revision = EXCLUDED.protection_revision, self_excluded_until = EXCLUDED.self_excluded_until, "
            "timeout_until = EXCLUDED.timeout_until WHERE players.protection_revision < EXCLUDED.protection_revision "
            "RETURNING player_id"),
            {"p": e.player_id, "rev": e.revision, "x": e.self_excluded_until, "t": e.timeout_until})).first()
        rt = holder["rt"]
        now = now_of(rt)
        if applied is None or e.self_excluded_until is None or e.self_excluded_until <= now:
            return
        # A player who self-excludes leaves with their own cash only: every open grant is forfeited
        # (a time-out only pauses play, its grants stay).
        if await _close_open_grants(s, e.player_id, None, "self-excluded", now):
            wake(rt)

    @consumers.on(DepositCredited)
    async def on_deposit(s: AsyncSession, e: DepositCredited, env: Envelope) -> None:
        rt = holder["rt"]
        now = now_of(rt)
        await s.execute(text("INSERT INTO players (player_id, deposits) VALUES (:p, 1) ON CONFLICT (player_id) "
                             "DO UPDATE SET deposits = players.deposits + 1"), {"p": e.player_id})
        offers = (await s.execute(text(
            "SELECT o.offer_id, o.live_version, v.terms, (i.player_id IS NOT NULL) AS opted_in FROM offers o "
            "JOIN offer_versions v ON v.offer_id = o.offer_id AND v.version = o.live_version "
            "LEFT JOIN opt_ins i ON i.offer_id = o.offer_id AND i.player_id = :p AND NOT i.settled "
            "WHERE o.state = 'live' AND o.kind = 'deposit_match' AND o.currency = :c ORDER BY o.created_at"),
            {"p": e.player_id, "c": e.currency})).all()
        made = False
        for offer_id, version, doc, opted_in in offers:
            terms = c.OfferTerms.model_validate(doc)
            if terms.eligibility.opt_in_required and not opted_in:
                continue
            if e.amount < terms.min_deposit:
                continue
            facts = await grants.facts(s, e.player_id, offer_id)
            if rules.ineligible(terms, facts, now, first_deposit=e.first_deposit) is not None:
                continue
            amount = min(e.amount * int(terms.match_pct or 0) // 100, int(terms.max_bonus or 0))
            if amount <= 0:
                continue
            if await grants.create(s, player_id=e.player_id, offer_id=offer_id, version=int(version), terms=terms,
                                   amount=amount, deposit=e.amount, source="deposit", now=now) is not None:
                made = True
                await s.execute(text("UPDATE opt_ins SET settled = true WHERE player_id = :p AND offer_id = :o"),
                                {"p": e.player_id, "o": offer_id})
        if made:
            wake(rt)

    @consumers.on(WithdrawalHeld)
    async def on_withdrawal(s: AsyncSession, e: WithdrawalHeld, env: Envelope) -> None:
        rt = holder["rt"]
        if await _close_open_grants(s, e.player_id, e.currency, "withdrawal", now_of(rt), forfeit_on_withdrawal=True):
            wake(rt)

    @consumers.on_batch(BetPlaced)
    async def on_bets(s: AsyncSession, events: list[tuple[BetPlaced, Envelope]]) -> None:
        rt = holder["rt"]
        await _serialise(s, [e.player_id for e, _ in events])
        wagering_, cashback = await _tracked(s, [e.player_id for e, _ in events])
        now = now_of(rt)
        fresh = []
        for e, _ in events:
            if (str(e.player_id), e.currency) in wagering_:
                fresh.append({"b": e.transaction_id, "p": e.player_id, "c": e.currency, "r": e.round_id,
                              "g": e.game_id, "a": e.amount, "at": now})
        await _add_play(s, [(e.player_id, e.currency, e.occurred_at.date(), e.amount, 0) for e, _ in events
                            if (str(e.player_id), e.currency) in cashback])
        if not fresh:
            return
        # a tombstone (rollback seen first) already holds the bet's id: the bet then never counts
        await s.execute(text(
            "INSERT INTO round_bets (bet_tx, player_id, currency, round_id, game_id, amount, state, seen_at) "
            "VALUES (:b, :p, :c, :r, :g, :a, 'open', :at) ON CONFLICT (bet_tx) DO NOTHING"), fresh)
        settled = (await s.execute(text(
            "SELECT b.bet_tx, b.player_id, b.currency, b.game_id, b.amount FROM round_bets b "
            "JOIN closed_rounds r ON r.player_id = b.player_id AND r.round_id = b.round_id "
            "WHERE b.bet_tx = ANY(CAST(:ids AS uuid[])) AND b.state = 'open' ORDER BY b.seen_at FOR UPDATE OF b"),
            {"ids": [str(f["b"]) for f in fresh]})).mappings().all()
        await count_bets(rt, s, [dict(r) for r in settled])
        if settled:
            wake(rt)

    @consumers.on_batch(WinSettled)
    async def on_wins(s: AsyncSession, events: list[tuple[WinSettled, Envelope]]) -> None:
        rt = holder["rt"]
        await _serialise(s, [e.player_id for e, _ in events])
        wagering_, cashback = await _tracked(s, [e.player_id for e, _ in events])
        await _add_play(s, [(e.player_id, e.currency, e.occurred_at.date(), 0, e.amount) for e, _ in events
                            if (str(e.player_id), e.currency) in cashback])
        closing = [{"p": e.player_id, "r": e.round_id, "at": e.occurred_at} for e, _ in events
                   if e.round_closed and (str(e.player_id), e.currency) in wagering_]
        if not closing:
            return
        await s.execute(text("INSERT INTO closed_rounds (player_id, round_id, closed_at) VALUES (:p, :r, :at) "
                             "ON CONFLICT DO NOTHING"), closing)
        settled = (await s.execute(text(
            "SELECT b.bet_tx, b.player_id, b.currency, b.game_id, b.amount FROM round_bets b "
            "JOIN unnest(CAST(:ps AS uuid[]), CAST(:rs AS text[])) AS k(p, r) "
            "ON b.player_id = k.p AND b.round_id = k.r "
            "WHERE b.state = 'open' ORDER BY b.seen_at FOR UPDATE OF b"),
            {"ps": [str(x["p"]) for x in closing], "rs": [x["r"] for x in closing]})).mappings().all()
        await count_bets(rt, s, [dict(r) for r in settled])
        if settled:
            wake(rt)

    @consumers.on(RolledBack)
    async def on_rollback(s: AsyncSession, e: RolledBack, env: Envelope) -> None:
        if e.bet_transaction_id is None:
            return  # the rollback of an unknown bet moved nothing
        rt = holder["rt"]
        await _serialise(s, [e.player_id])
        bet = (await s.execute(text("SELECT state, grant_id, contributed FROM round_bets WHERE bet_tx = :b FOR UPDATE"),
                               {"b": e.bet_transaction_id})).one_or_none()
        if bet is None:
            wagering_, _ = await _tracked(s, [e.player_id])
            if (str(e.player_id), e.currency) in wagering_:
                await s.execute(text(
                    "INSERT INTO round_bets (bet_tx, player_id, currency, round_id, game_id, amount, state, seen_at) "
                    "VALUES (:b, :p, :c, :r, :g, 0, 'rolled_back', :at) ON CONFLICT (bet_tx) DO NOTHING"),
                    {"b": e.bet_transaction_id, "p": e.player_id, "c": e.currency, "r": e.round_id or "",
                     "g": e.game_id or "", "at": now_of(rt)})
            return
        await s.execute(text("UPDATE round_bets SET state = 'rolled_back' WHERE bet_tx = :b"),
                        {"b": e.bet_transaction_id})
        if bet.state == "counted" and bet.grant_id is not None and bet.contributed:
            # the close overtook the rollback on its way here: take the contribution back
            g = await grants.lock(s, bet.grant_id)
            if g is not None and g["state"] in ("active", "wagering"):
                g["wagered"] = max(int(g["wagered"]) - int(bet.contributed), 0)
                await _save_progress(s, [g], now_of(rt))

    @consumers.on(FreeSpinWon)
    async def on_free_spin(s: AsyncSession, e: FreeSpinWon, env: Envelope) -> None:
        try:
            gid = uuid.UUID(e.grant_id)
        except ValueError:
            return  # not one of ours
        rt = holder["rt"]
        g = await grants.lock(s, gid)
        if g is None or g["state"] not in ("active", "wagering"):
            return
        g["amount"] = int(g["amount"]) + e.amount
        g["wagering_required"] = int(g["wagering_required"]) + int(g["wagering_multiplier"]) * e.amount
        g["spins_played"] = int(g["spins_played"]) + 1
        await s.execute(text("UPDATE grants SET amount = :a, wagering_required = :r, spins_played = :n "
                             "WHERE grant_id = :g"),
                        {"a": g["amount"], "r": g["wagering_required"], "n": g["spins_played"], "g": gid})
        await grants.progress(s, g, now_of(rt))
        wake(rt)

    return consumers


