"""wallet: the player's receivable (what they owe after a chargeback their cash could not cover).

A new account kind whose balance is at most zero (an asset of the platform); every other player
account stays at least zero. Expand only: the previous release never writes a receivable, and
what it writes passes the new checks as it passed the old ones.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KINDS = ("'cash','bonus','withdrawal_hold','house','psp_clearing','provider_clearing','bonus_liability',"
         "'bonus_cost','affiliate_payable','world'")


def upgrade() -> None:
    op.drop_constraint(op.f("ck_accounts_kind_known"), "accounts", type_="check")
    op.create_check_constraint(op.f("ck_accounts_kind_known"), "accounts",
                               f"kind IN ({KINDS},'receivable')")
    op.drop_constraint(op.f("ck_accounts_player_non_negative"), "accounts", type_="check")
    op.create_check_constraint(op.f("ck_accounts_player_non_negative"), "accounts",
                               "owner = 'platform' OR kind = 'receivable' OR balance >= 0")
    op.create_check_constraint(op.f("ck_accounts_receivable_non_positive"), "accounts",
                               "kind <> 'receivable' OR balance <= 0")


def downgrade() -> None:
    # only possible while no receivable exists (the kind check refuses the rows otherwise)
    op.drop_constraint(op.f("ck_accounts_receivable_non_positive"), "accounts", type_="check")
    op.drop_constraint(op.f("ck_accounts_player_non_negative"), "accounts", type_="check")
    op.create_check_constraint(op.f("ck_accounts_player_non_negative"), "accounts",
                               "owner = 'platform' OR balance >= 0")
    op.drop_constraint(op.f("ck_accounts_kind_known"), "accounts", type_="check")
    op.create_check_constraint(op.f("ck_accounts_kind_known"), "accounts", f"kind IN ({KINDS})")
