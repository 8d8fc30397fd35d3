"""affiliates: affiliates and their deals, links, clicks, attributions, first deposits, money per
player and day, the postback queue, closed statements (immutable), closed months, the audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from gameplane.kit.audit import create_audit_table, drop_audit_table
from gameplane.kit.migrate import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
FIGURES = ("stakes", "wins", "bonus_stakes", "bonus_wins", "bonus_converted", "payment_fees", "deposits",
           "withdrawals")


def upgrade() -> None:
    create_kit_tables()
    create_audit_table()
    op.create_table(
        "affiliates",
        sa.Column("affiliate_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_id", UUID(as_uuid=True), nullable=True),
        sa.Column("override_bp", sa.Integer(), nullable=False),
        sa.Column("postback_url", sa.Text(), nullable=True),
        sa.Column("postback_secret", sa.String(100), nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("deal", JSONB(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_affiliates_parent_id", "affiliates", ["parent_id"])
    op.create_table(
        "links",
        sa.Column("link_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("affiliate_id", UUID(as_uuid=True), nullable=False),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("landing_url", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_links_affiliate_id", "links", ["affiliate_id"])
    op.create_table(
        "clicks",
        sa.Column("click_id", sa.String(64), primary_key=True),
        sa.Column("link_id", UUID(as_uuid=True), nullable=False),
        sa.Column("affiliate_id", UUID(as_uuid=True), nullable=False),
        sa.Column("sub_ids", JSONB(), nullable=False),
        sa.Column("ip_hash", sa.String(64), nullable=False),
        sa.Column("ua_hash", sa.String(64), nullable=False),
        sa.Column("flag", sa.String(16), nullable=True),
        sa.Column("clicked_at", TS, nullable=False),
    )
    op.create_index("ix_clicks_dedupe", "clicks", ["link_id", "ip_hash", "ua_hash", "clicked_at"])
    op.create_table(
        "attributions",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("player_ref", sa.String(40), nullable=False, unique=True),
        sa.Column("affiliate_id", UUID(as_uuid=True), nullable=True),
        sa.Column("click_id", sa.String(64), nullable=True),
        sa.Column("link_id", UUID(as_uuid=True), nullable=True),
        sa.Column("sub_ids", JSONB(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("qualified_at", TS, nullable=True),
    )
    op.create_index("ix_attributions_affiliate_id", "attributions", ["affiliate_id"])
    op.create_table(
        "first_deposits",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("deposited_at", TS, nullable=False),
    )
    op.create_table(
        "player_days",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        *(sa.Column(n, sa.BigInteger(), nullable=False, server_default=sa.text("0")) for n in FIGURES),
    )
    op.create_table(
        "postbacks",
        sa.Column("postback_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("affiliate_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("next_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("acked_at", TS, nullable=True),
    )
    op.create_index("ux_postbacks_once", "postbacks", ["affiliate_id", "kind", "player_id"], unique=True)
    op.create_index("ix_postbacks_due", "postbacks", ["next_at"], postgresql_where=sa.text("state = 'pending'"))
    op.create_table(
        "statements",
        sa.Column("affiliate_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("month", sa.Date(), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("body", JSONB(), nullable=False),
        sa.Column("commission", sa.BigInteger(), nullable=False),
        sa.Column("carry_out", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", TS, nullable=False),
    )
    # A closed statement is what was paid: no statement may change or remove one.
    bind = op.get_bind()
    bind.exec_driver_sql(
        "CREATE FUNCTION statements_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'closed statements are immutable'; END $$")
    bind.exec_driver_sql(
        "CREATE TRIGGER statements_immutable BEFORE UPDATE OR DELETE ON statements "
        "FOR EACH ROW EXECUTE FUNCTION statements_immutable()")
    op.create_table(
        "closed_months",
        sa.Column("month", sa.Date(), primary_key=True),
        sa.Column("closed_at", TS, nullable=False),
        sa.Column("closed_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    for t in ("closed_months", "statements", "postbacks", "player_days", "first_deposits", "attributions",
              "clicks", "links", "affiliates"):
        op.drop_table(t)
    op.get_bind().exec_driver_sql("DROP FUNCTION IF EXISTS statements_immutable()")
    drop_audit_table()
    op.drop_table("processed_events")
    op.drop_table("outbox")
