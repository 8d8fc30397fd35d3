"""wallet: the platform's `payment_fees` account (what the payment providers charge, from their
settlement reports: payment_fees is debited, psp_clearing credited, the house untouched).

A new account kind in the kind check, nothing else. Expand only: the previous release never
writes a fee, and everything it writes passes the new check as it passed the old one.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

KINDS = ("'cash','bonus','withdrawal_hold','receivable','house','psp_clearing','provider_clearing',"
         "'bonus_liability','bonus_cost','affiliate_payable','world'")


def upgrade() -> None:
    op.drop_constraint(op.f("ck_accounts_kind_known"), "accounts", type_="check")
    op.create_check_constraint(op.f("ck_accounts_kind_known"), "accounts", f"kind IN ({KINDS},'payment_fees')")


def downgrade() -> None:
    # only possible while no payment_fees account exists (the kind check refuses the row otherwise)
    op.drop_constraint(op.f("ck_accounts_kind_known"), "accounts", type_="check")
    op.create_check_constraint(op.f("ck_accounts_kind_known"), "accounts", f"kind IN ({KINDS})")
