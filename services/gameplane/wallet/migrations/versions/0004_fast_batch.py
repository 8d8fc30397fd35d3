"""wallet: fast bets and wins in batches, one transaction per batch, the house posted once per batch
(see sql/0004_fast_batch.sql)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from gameplane.kit.migrate import run_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("gameplane.wallet", "0004_fast_batch.sql")


def downgrade() -> None:
    for fn in ("wallet_fast_batch(jsonb, int)", "wallet_fast_house(text, int)",
               "wallet_fast_bet(text, text, uuid, text, bigint, text, text, text, jsonb, timestamptz, uuid, uuid,"
               " jsonb, bigint)",
               "wallet_fast_win(text, text, uuid, text, bigint, text, text, text, boolean, jsonb, timestamptz, uuid,"
               " uuid, jsonb, bigint)"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    run_sql_file("gameplane.wallet", "0002_fast_play.sql")  # the one-operation entry points again
