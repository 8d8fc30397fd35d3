"""risk: a case can be `withdrawn` (what it reviewed was cancelled before anyone decided).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _states("'open', 'approved', 'rejected', 'withdrawn'")


def downgrade() -> None:
    # a withdrawn case had nothing left to decide: it reads as rejected to the older code
    op.execute("UPDATE cases SET state = 'rejected' WHERE state = 'withdrawn'")
    _states("'open', 'approved', 'rejected'")


def _states(allowed: str) -> None:
    op.execute("ALTER TABLE cases DROP CONSTRAINT ck_cases_state")
    op.execute(f"ALTER TABLE cases ADD CONSTRAINT ck_cases_state CHECK (state IN ({allowed}))")
