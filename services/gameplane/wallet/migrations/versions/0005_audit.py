"""wallet: the append-only staff audit log (manual adjustments are staff actions).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from gameplane.kit.audit import create_audit_table, drop_audit_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table()


def downgrade() -> None:
    drop_audit_table()
