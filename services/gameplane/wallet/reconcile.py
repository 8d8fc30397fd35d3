"""Reconciliation: every invariant of docs/reference/ledger.md, checked over the whole database in one
consistent snapshot. Each query returns the offending rows (capped), so a breach names its culprit.

Invariant 7 is the receivable's (a chargeback's shortfall, what the player owes): only chargebacks
book it and only deposits settle it; a chargeback takes cash first, up to the cash there was; a
deposit settles what was owed first. "Before a transaction" is the sum of the account's entries of
the player's earlier transactions (by `seq`): every operation on a player's cash or receivable
takes the player's cash row lock before it writes its transaction, so their `seq` order is the
order in which they happened.

Invariant 8 is the grants' (bonus money held per grant, migration 0008): each grant's balance is
the sum of its grant_entries; the open grants of a player in a currency hold exactly their bonus
account's balance; a closed grant holds nothing. (The brief of issue 15 calls it invariant 7;
7 was already the receivable's.)

Invariant 9 is the payment fees' (migration 0010): only fee transactions move the `payment_fees`
account, and a fee moves exactly that account by minus its amount and `psp_clearing` by its amount,
nothing else (no player account, not the house: GGR stays the house's movement)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gameplane.wallet.schemas import Breach, ReconciliationReport

CAP = 50

# What the latest run found, for GameplaneWalletReconciliationBreach (wallet-rules.yaml): must be 0.
BREACHES = Gauge("gameplane_wallet_reconciliation_breaches",
                 f"Invariant breaches the latest reconciliation run found (at most {CAP} per invariant check)")
LAST_RUN = Gauge("gameplane_wallet_reconciliation_last_run_timestamp_seconds",
                 "When the latest reconciliation run ended")

CHECKS: list[tuple[int, str, str]] = [
    (1, "transaction {0} sums to {2} {1}",
     "SELECT transaction_id, currency, sum(amount) FROM entries GROUP BY 1, 2 HAVING sum(amount) <> 0"),
    (1, "entry {0} is in {1} but its account {2} is in {3}",
     "SELECT e.id, e.currency, a.id, a.currency FROM entries e JOIN accounts a ON a.id = e.account_id "
     "WHERE e.currency <> a.currency"),
    (2, "player account {0} ({1} {2} of {3}) is negative: {4}",
     "SELECT id, kind, currency, owner, balance FROM accounts WHERE owner <> 'platform' AND kind <> 'receivable' "
     "AND balance < 0"),
    (2, "receivable {0} ({1} of {2}) is positive: {3} (a debt account is at most zero)",
     "SELECT id, currency, owner, balance FROM accounts WHERE kind = 'receivable' AND balance > 0"),
    (3, "account {0} ({1} {2} of {3}) stores {4} but its entries sum to {5}",
     "SELECT a.id, a.kind, a.currency, a.owner, a.balance, coalesce(s.total, 0) FROM accounts a "
     "LEFT JOIN (SELECT account_id, sum(amount) AS total FROM entries GROUP BY 1) s ON s.account_id = a.id "
     "WHERE a.balance <> coalesce(s.total, 0)"),
    (4, "balances in {0} sum to {1}, not 0: money was made or lost",
     "SELECT currency, sum(balance) FROM accounts GROUP BY 1 HAVING sum(balance) <> 0"),
    (5, "operation {0} ({1}) has no transaction or no stored answer",
     "SELECT key, kind FROM operations WHERE kind <> 'tombstone' "
     "AND (transaction_id IS NULL OR response IS NULL OR response->>'transaction_id' <> transaction_id::text)"),
    (5, "transaction {0} (key {1}) is not the one its idempotency record names",
     "SELECT t.id, t.idempotency_key FROM transactions t LEFT JOIN operations o ON o.key = t.idempotency_key "
     "WHERE o.key IS NULL OR o.transaction_id IS DISTINCT FROM t.id"),
    (5, "idempotency key {0} has {1} transactions",
     "SELECT idempotency_key, count(*) FROM transactions GROUP BY 1 HAVING count(*) > 1"),
    (6, "rollback {0} does not mirror bet {1} on account {2} (off by {3})",
     "SELECT r.id, r.reverses, e.account_id, sum(e.amount) FROM transactions r "
     "JOIN entries e ON e.transaction_id IN (r.id, r.reverses) WHERE r.reverses IS NOT NULL "
     "GROUP BY r.id, r.reverses, e.account_id HAVING sum(e.amount) <> 0"),
    (6, "rollback {0} reverses {1}, which is not a bet of the same split and player",
     "SELECT r.id, r.reverses FROM transactions r LEFT JOIN transactions b ON b.id = r.reverses "
     "WHERE r.reverses IS NOT NULL AND (b.id IS NULL OR b.kind <> 'bet' OR r.kind <> 'rollback' "
     "OR b.cash <> r.cash OR b.bonus <> r.bonus OR b.player_id <> r.player_id)"),
    (6, "bet {0} is marked rolled back by {1}, but that transaction does not reverse it",
     "SELECT o.key, o.rolled_back_by FROM operations o WHERE o.kind = 'bet' AND o.rolled_back_by IS NOT NULL "
     "AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = o.rolled_back_by AND t.reverses = o.transaction_id)"),
    (6, "bet {0} was reversed by {1} but is not marked rolled back",
     "SELECT b.idempotency_key, r.id FROM transactions r JOIN transactions b ON b.id = r.reverses "
     "JOIN operations o ON o.key = b.idempotency_key WHERE o.rolled_back_by IS DISTINCT FROM r.id"),
    (6, "rolled-back (tombstoned) bet key {0} was applied later as transaction {1}",
     "SELECT o.key, t.id FROM operations o JOIN transactions t ON t.idempotency_key = o.key "
     "WHERE o.kind = 'tombstone'"),
    (7, "transaction {0} ({1}) moves receivable {2} by {3}: only chargebacks book a debt, only deposits settle it",
     "SELECT t.id, t.kind, a.id, e.amount FROM entries e JOIN accounts a ON a.id = e.account_id "
     "JOIN transactions t ON t.id = e.transaction_id WHERE a.kind = 'receivable' "
     "AND NOT ((t.kind = 'chargeback' AND e.amount < 0) OR (t.kind = 'deposit' AND e.amount > 0))"),
    (7, "receivable {0} is on a platform account or a shard",
     "SELECT id FROM accounts WHERE kind = 'receivable' AND (owner = 'platform' OR shard <> 0)"),
    (7, "chargeback {0} of {1} {2} took {3} from cash when the player had {4}: cash pays first, up to its balance",
     "SELECT t.id, t.amount, t.currency, coalesce(-mine.amount, 0), coalesce(before.cash, 0) FROM transactions t "
     "JOIN accounts ca ON ca.owner = t.player_id::text AND ca.kind = 'cash' AND ca.currency = t.currency "
     "AND ca.shard = 0 "
     "LEFT JOIN LATERAL (SELECT sum(e.amount) AS amount FROM entries e WHERE e.transaction_id = t.id "
     " AND e.account_id = ca.id) mine ON true "
     "LEFT JOIN LATERAL (SELECT sum(e.amount) AS cash FROM entries e JOIN transactions p ON p.id = e.transaction_id "
     " WHERE e.account_id = ca.id AND p.seq < t.seq) before ON true "
     "WHERE t.kind = 'chargeback' "
     "AND coalesce(-mine.amount, 0) <> least(t.amount, greatest(coalesce(before.cash, 0), 0))"),
    (7, "deposit {0} of {1} {2} settled {3} when the player owed {4}: a deposit settles the receivable first",
     "SELECT t.id, t.amount, t.currency, coalesce(mine.amount, 0), coalesce(-before.owed, 0) FROM transactions t "
     "JOIN accounts ra ON ra.owner = t.player_id::text AND ra.kind = 'receivable' AND ra.currency = t.currency "
     "LEFT JOIN LATERAL (SELECT sum(e.amount) AS amount FROM entries e WHERE e.transaction_id = t.id "
     " AND e.account_id = ra.id) mine ON true "
     "LEFT JOIN LATERAL (SELECT sum(e.amount) AS owed FROM entries e JOIN transactions p ON p.id = e.transaction_id "
     " WHERE e.account_id = ra.id AND p.seq < t.seq) before ON true "
     "WHERE t.kind = 'deposit' AND coalesce(mine.amount, 0) <> least(t.amount, coalesce(-before.owed, 0))"),
]

CHECKS += [
    (9, "transaction {0} ({1}) moves payment_fees {2} by {3}: only a fee books on it, by minus its amount",
     "SELECT t.id, t.kind, a.id, e.amount FROM entries e JOIN accounts a ON a.id = e.account_id "
     "JOIN transactions t ON t.id = e.transaction_id WHERE a.kind = 'payment_fees' "
     "AND NOT (t.kind = 'fee' AND a.owner = 'platform' AND e.amount = -t.amount)"),
    (9, "fee {0} of {1} {2} moves {3} {4} by {5}: a fee moves only payment_fees and psp_clearing",
     "SELECT t.id, t.amount, t.currency, a.owner, a.kind, e.amount FROM transactions t "
     "JOIN entries e ON e.transaction_id = t.id JOIN accounts a ON a.id = e.account_id WHERE t.kind = 'fee' "
     "AND NOT (a.owner = 'platform' AND ((a.kind = 'payment_fees' AND e.amount = -t.amount) "
     "OR (a.kind = 'psp_clearing' AND e.amount = t.amount)))"),
]

# Invariant 8 needs migration 0008's tables (the upgrade tests reconcile databases at older revisions).
GRANT_CHECKS: list[tuple[int, str, str]] = [
    (8, "grant {0} stores {1} but its grant entries sum to {2}",
     "SELECT g.grant_id, g.balance, coalesce(s.total, 0) FROM bonus_grants g "
     "LEFT JOIN (SELECT grant_id, sum(amount) AS total FROM grant_entries GROUP BY 1) s ON s.grant_id = g.grant_id "
     "WHERE g.balance <> coalesce(s.total, 0)"),
    (8, "player {0} holds {2} {1} of bonus money but their open grants hold {3}",
     "SELECT coalesce(a.owner, o.owner), coalesce(a.currency, o.currency), coalesce(a.balance, 0), "
     "coalesce(o.total, 0) FROM (SELECT owner, currency, balance FROM accounts WHERE kind = 'bonus' "
     " AND owner <> 'platform' AND shard = 0) a "
     "FULL JOIN (SELECT player_id::text AS owner, currency, sum(balance) AS total FROM bonus_grants "
     " WHERE state = 'active' GROUP BY 1, 2) o ON o.owner = a.owner AND o.currency = a.currency "
     "WHERE coalesce(a.balance, 0) <> coalesce(o.total, 0)"),
    (8, "grant {0} is {1} but holds {2}: a closed grant holds nothing",
     "SELECT grant_id, state, balance FROM bonus_grants WHERE state <> 'active' AND balance <> 0"),
]


async def reconcile(s: AsyncSession) -> ReconciliationReport:
    """Run inside a fresh transaction on `s`; the snapshot is repeatable so checks agree."""
    await s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    breaches: list[Breach] = []
    grants = (await s.execute(text("SELECT to_regclass('grant_entries') IS NOT NULL"))).scalar_one()
    for invariant, template, sql in CHECKS + (GRANT_CHECKS if grants else []):
        rows = (await s.execute(text(f"{sql} LIMIT {CAP}"))).all()
        breaches += [Breach(invariant=invariant, detail=template.format(*r)) for r in rows]
    counts = (await s.execute(text(
        "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM entries), "
        "(SELECT count(*) FROM accounts)"))).one()
    BREACHES.set(len(breaches))
    LAST_RUN.set_to_current_time()
    return ReconciliationReport(ok=not breaches, checked_at=datetime.now(UTC), transactions=counts[0],
                                entries=counts[1], accounts=counts[2], breaches=breaches)
