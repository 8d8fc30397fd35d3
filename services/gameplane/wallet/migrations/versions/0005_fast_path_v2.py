"""wallet: the fast path under versioned names (wallet_fast_batch_v2 and what it calls; see
sql/0005_fast_path_v2.sql and docs/upgrades.md). Expand only: 0004's unversioned functions stay
for the previous release's pods until a later release's migration drops them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from gameplane.kit.migrate import run_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FUNCTIONS = ("wallet_fast_batch_v2(jsonb, int)",
             "wallet_fast_bet_v2(text, text, uuid, text, bigint, text, text, text, jsonb, timestamptz, uuid, uuid,"
             " jsonb, bigint)",
             "wallet_fast_win_v2(text, text, uuid, text, bigint, text, text, text, boolean, jsonb, timestamptz, uuid,"
             " uuid, jsonb, bigint)")


def upgrade() -> None:
    run_sql_file("gameplane.wallet", "0005_fast_path_v2.sql")


def downgrade() -> None:
    for fn in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
