"""wallet: the fast path v4 (sql/0009_fast_path_v4.sql): bets and wins of players holding bonus money
served in one round trip too, with the per-grant bookkeeping of 0008 written exactly as the Python
path writes it; what only the Python path answers (a max-stake refusal, a win on a grant closed since
the bet, a round staked before 0008) is still declined to it.

Expand only: the v3 functions stay for the previous release's pods until a later release drops them.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

from gameplane.kit.migrate import run_sql_file

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FUNCTIONS = ("wallet_fast_batch_v4(jsonb, int)",
             "wallet_fast_bet_v4(text, text, uuid, text, bigint, text, text, text, jsonb, timestamptz, uuid, uuid,"
             " jsonb, bigint)",
             "wallet_fast_win_v4(text, text, uuid, text, bigint, text, text, text, boolean, jsonb, timestamptz, uuid,"
             " uuid, jsonb, bigint)",
             "wallet_fast_grants_post(uuid, text[], bigint[], int)")


def upgrade() -> None:
    run_sql_file("gameplane.wallet", "0009_fast_path_v4.sql")


def downgrade() -> None:
    for fn in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
