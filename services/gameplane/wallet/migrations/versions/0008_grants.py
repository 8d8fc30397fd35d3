"""wallet: per-grant bonus money. Each grant holds its own balance (bonus_grants.balance, never below
zero, zero once closed) with a sub-ledger (grant_entries: what each transaction moved on which
grant); a round remembers its stake per grant (rounds.stake_grants) so that wins follow it; a
grant carries the max stake the wallet enforces and its spend priority. The fast path moves to v3
(sql/0008_fast_path_v3.sql), which declines what needs this bookkeeping.

Existing bonus money migrates without loss: a player's bonus account balance is spread over their
active grants, oldest first, each up to its granted amount; any rest becomes one synthetic active
grant `migrated-<player>-<currency>`. Each player's opening grant entries hang on one
`grant_migration` transaction (no account entries: no account moves) with its idempotency record,
so every invariant of the reconciliation holds on the migrated data.

Expand only: the previous release's code still runs on this schema during the roll (it moves
bonus money without the grant bookkeeping, which reconciliation invariant 8 would then report: roll
a release with bonus play only once every pod runs it; docs/upgrades.md).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from gameplane.kit.migrate import run_sql_file

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FUNCTIONS = ("wallet_fast_batch_v3(jsonb, int)",
             "wallet_fast_bet_v3(text, text, uuid, text, bigint, text, text, text, jsonb, timestamptz, uuid, uuid,"
             " jsonb, bigint)",
             "wallet_fast_win_v3(text, text, uuid, text, bigint, text, text, text, boolean, jsonb, timestamptz, uuid,"
             " uuid, jsonb, bigint)")

# Per (player, currency) with bonus money: its active grants in spend order, each taking up to its
# granted amount of what is left; the rest goes to the synthetic grant.
_SPREAD = """
WITH bal AS (
    SELECT owner, currency, balance FROM accounts
    WHERE kind = 'bonus' AND owner <> 'platform' AND shard = 0 AND balance > 0),
g AS (
    SELECT b.grant_id, b.amount, bal.balance,
           coalesce(sum(b.amount) OVER (PARTITION BY b.player_id, b.currency ORDER BY b.created_at, b.grant_id
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM bonus_grants b JOIN bal ON bal.owner = b.player_id::text AND bal.currency = b.currency
    WHERE b.state = 'active')
UPDATE bonus_grants t SET balance = greatest(0, least(g.amount, g.balance - g.before))
FROM g WHERE t.grant_id = g.grant_id
"""
_REST = """
INSERT INTO bonus_grants (grant_id, player_id, currency, amount, state, balance)
SELECT 'migrated-' || a.owner || '-' || a.currency, a.owner::uuid, a.currency,
       a.balance - coalesce(s.spread, 0), 'active', a.balance - coalesce(s.spread, 0)
FROM accounts a LEFT JOIN (
    SELECT player_id::text AS owner, currency, sum(balance) AS spread FROM bonus_grants
    WHERE state = 'active' GROUP BY 1, 2) s ON s.owner = a.owner AND s.currency = a.currency
WHERE a.kind = 'bonus' AND a.owner <> 'platform' AND a.shard = 0 AND a.balance > coalesce(s.spread, 0)
"""
_TRANSACTIONS = """
INSERT INTO transactions (id, idempotency_key, kind, player_id, currency, amount, cash, bonus, details)
SELECT gen_random_uuid(), 'wallet:grant-migration:' || player_id || ':' || currency, 'grant_migration',
       player_id, currency, 0, 0, 0, jsonb_build_object('migration', '0008', 'bonus', sum(balance))
FROM bonus_grants WHERE balance > 0 GROUP BY player_id, currency
"""
_OPERATIONS = """
INSERT INTO operations (key, kind, request_hash, transaction_id, response)
SELECT t.idempotency_key, 'grant_migration', '', t.id, jsonb_build_object(
    'transaction_id', t.id, 'kind', t.kind, 'idempotency_key', t.idempotency_key, 'player_id', t.player_id,
    'currency', t.currency, 'amount', 0, 'created_at', t.created_at, 'noop', true,
    'balance', jsonb_build_object('currency', t.currency, 'cash', 0, 'bonus', t.details->'bonus',
                                  'withdrawal_hold', 0))
FROM transactions t WHERE t.kind = 'grant_migration'
"""
_ENTRIES = """
INSERT INTO grant_entries (transaction_id, grant_id, amount)
SELECT t.id, g.grant_id, g.balance FROM bonus_grants g JOIN transactions t
    ON t.kind = 'grant_migration' AND t.player_id = g.player_id AND t.currency = g.currency
WHERE g.balance > 0
"""


def upgrade() -> None:
    op.add_column("bonus_grants", sa.Column("balance", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    op.add_column("bonus_grants", sa.Column("max_stake", sa.BigInteger(), nullable=True))
    op.add_column("bonus_grants", sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("bonus_grants", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("rounds", sa.Column("stake_grants", postgresql.JSONB(astext_type=sa.Text()),
                                      server_default=sa.text("'{}'"), nullable=False))
    op.create_table(
        "grant_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.UUID(), nullable=False),
        sa.Column("grant_id", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_grant_entries_non_zero")),
        sa.ForeignKeyConstraint(["grant_id"], ["bonus_grants.grant_id"],
                                name=op.f("fk_grant_entries_grant_id_bonus_grants")),
        sa.ForeignKeyConstraint(["transaction_id"], ["transactions.id"],
                                name=op.f("fk_grant_entries_transaction_id_transactions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_entries")),
    )
    op.create_index("ix_grant_entries_grant", "grant_entries", ["grant_id"], unique=False)
    op.create_index("ix_grant_entries_transaction", "grant_entries", ["transaction_id"], unique=False)
    for statement in (_SPREAD, _REST, _TRANSACTIONS, _OPERATIONS, _ENTRIES):
        op.execute(statement)
    op.create_check_constraint(op.f("ck_bonus_grants_balance_non_negative"), "bonus_grants", "balance >= 0")
    op.create_check_constraint(op.f("ck_bonus_grants_closed_is_empty"), "bonus_grants",
                               "state = 'active' OR balance = 0")
    op.create_index("ix_bonus_grants_open", "bonus_grants",
                    ["player_id", "currency", "priority", "created_at", "grant_id"], unique=False,
                    postgresql_where=sa.text("state = 'active'"))
    run_sql_file("gameplane.wallet", "0008_fast_path_v3.sql")


def downgrade() -> None:
    for fn in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.drop_index("ix_bonus_grants_open", table_name="bonus_grants")
    op.drop_constraint(op.f("ck_bonus_grants_closed_is_empty"), "bonus_grants", type_="check")
    op.drop_constraint(op.f("ck_bonus_grants_balance_non_negative"), "bonus_grants", type_="check")
    op.drop_table("grant_entries")
    op.execute("DELETE FROM operations WHERE kind = 'grant_migration'")
    op.execute("DELETE FROM transactions WHERE kind = 'grant_migration'")
    op.execute("DELETE FROM bonus_grants WHERE grant_id LIKE 'migrated-%'")
    op.drop_column("rounds", "stake_grants")
    for column in ("closed_at", "priority", "max_stake", "balance"):
        op.drop_column("bonus_grants", column)
