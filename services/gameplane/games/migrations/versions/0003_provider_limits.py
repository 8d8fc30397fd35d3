"""games: a maximum win multiplier per game and the wins in flight per round (the cap's gate);
request-id records indexed by age (they are pruned)

Revision ID: 0003_provider_limits
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_provider_limits"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("games", sa.Column("max_win_multiplier", sa.Integer(), nullable=False,
                                     server_default=sa.text("5000")))
    op.add_column("rounds", sa.Column("win_pending", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
    op.create_index("ix_provider_requests_created_at", "provider_requests", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_provider_requests_created_at", table_name="provider_requests")
    op.drop_column("rounds", "win_pending")
    op.drop_column("games", "max_win_multiplier")
