"""wallet: the append-only staff audit log (manual adjustments are staff actions).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from gameplane.kit.audit import create_audit_table, drop_audit_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table()


def downgrade() -> None:
    drop_audit_table()
