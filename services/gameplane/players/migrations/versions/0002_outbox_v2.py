"""players: outbox v2 (the relay deletes acknowledged rows; see gameplane.kit.migrate.outbox_v2)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from gameplane.kit.migrate import outbox_v1, outbox_v2

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_v2()


def downgrade() -> None:
    outbox_v1()
