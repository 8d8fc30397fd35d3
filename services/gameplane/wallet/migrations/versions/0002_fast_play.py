"""wallet: the one-round-trip bet/win fast path (SQL functions; see sql/0002_fast_play.sql)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from gameplane.kit.migrate import run_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FUNCTIONS = ("wallet_fast_bet(text, text, uuid, text, bigint, text, text, text, jsonb, timestamptz, uuid, uuid,"
             " jsonb, int)",
             "wallet_fast_win(text, text, uuid, text, bigint, text, text, text, boolean, jsonb, timestamptz, uuid,"
             " uuid, jsonb, int)",
             "wallet_fast_envelope(uuid, text, timestamptz, jsonb)",
             "wallet_fast_answer(uuid, text, text, uuid, text, bigint, bigint, bigint, bigint, bigint, bigint,"
             " timestamptz)",
             "wallet_fast_post(text, text, text, int, bigint)",
             "wallet_fast_lock_player(text, text)",
             "wallet_fast_decline(text)",
             "wallet_fast_ts(timestamptz)")


def upgrade() -> None:
    run_sql_file("gameplane.wallet", "0002_fast_play.sql")


def downgrade() -> None:
    for fn in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
