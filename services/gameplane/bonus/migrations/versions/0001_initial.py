"""bonus: campaigns, offers and their immutable versions, the players copy, opt-ins, grants, the
bets of unsettled rounds, play per day (cashback), the staff audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from gameplane.kit.audit import create_audit_table, drop_audit_table
from gameplane.kit.migrate import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
OPEN = "state IN ('issued', 'active', 'wagering')"


def upgrade() -> None:
    create_kit_tables()
    create_audit_table()
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("starts_at", TS, nullable=True),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "offers",
        sa.Column("offer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("campaign_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("live_version", sa.Integer(), nullable=True),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_offers_state", "offers", ["state"])
    op.create_table(
        "offer_versions",
        sa.Column("offer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("terms", JSONB(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    # A published version is what grants were made from: no statement may change or remove one.
    bind = op.get_bind()
    bind.exec_driver_sql(
        "CREATE FUNCTION offer_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'offer versions are immutable'; END $$")
    bind.exec_driver_sql(
        "CREATE TRIGGER offer_versions_immutable BEFORE UPDATE OR DELETE ON offer_versions "
        "FOR EACH ROW EXECUTE FUNCTION offer_versions_immutable()")
    op.create_table(
        "players",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("registered_at", TS, nullable=True),
        sa.Column("segments", ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("protection_revision", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("self_excluded_until", TS, nullable=True),
        sa.Column("timeout_until", TS, nullable=True),
        sa.Column("deposits", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "opt_ins",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("offer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("opted_in_at", TS, nullable=False),
        sa.Column("period_ends_at", TS, nullable=True),
        sa.Column("settled", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.create_index("ix_opt_ins_open_cashback", "opt_ins", ["period_ends_at"],
                    postgresql_where=sa.text("NOT settled AND kind = 'cashback'"))
    op.create_table(
        "grants",
        sa.Column("grant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("offer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("offer_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("deposit_amount", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("wagering_multiplier", sa.Integer(), nullable=False),
        sa.Column("wagering_required", sa.BigInteger(), nullable=False),
        sa.Column("wagered", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("contributions", JSONB(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("max_stake", sa.BigInteger(), nullable=True),
        sa.Column("cashout_cap", sa.BigInteger(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("forfeit_on_withdrawal", sa.Boolean(), nullable=False),
        sa.Column("spins", sa.Integer(), nullable=True),
        sa.Column("spins_played", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("game_id", sa.String(100), nullable=True),
        sa.Column("spin_stake", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("converted", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("pending", sa.String(8), nullable=True),
        sa.Column("wallet_granted", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.create_index("uq_grants_player_offer", "grants", ["player_id", "offer_id"], unique=True)
    op.create_index("ix_grants_open", "grants", ["player_id", "currency", "created_at"],
                    postgresql_where=sa.text(OPEN))
    op.create_index("ix_grants_pending", "grants", ["created_at"], postgresql_where=sa.text("pending IS NOT NULL"))
    op.create_index("ix_grants_expiry", "grants", ["expires_at"], postgresql_where=sa.text(OPEN))
    op.create_table(
        "round_bets",
        sa.Column("bet_tx", UUID(as_uuid=True), primary_key=True),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("round_id", sa.String(200), nullable=False),
        sa.Column("game_id", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("grant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("contributed", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("seen_at", TS, nullable=False),
    )
    op.create_index("ix_round_bets_round", "round_bets", ["player_id", "round_id"])
    op.create_index("ix_round_bets_seen", "round_bets", ["seen_at"])
    op.create_table(
        "closed_rounds",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("round_id", sa.String(200), primary_key=True),
        sa.Column("closed_at", TS, nullable=False),
    )
    op.create_index("ix_closed_rounds_closed", "closed_rounds", ["closed_at"])
    op.create_table(
        "play_days",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("staked", sa.BigInteger(), nullable=False),
        sa.Column("won", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in ("play_days", "closed_rounds", "round_bets", "grants", "opt_ins", "players"):
        op.drop_table(table)
    op.get_bind().exec_driver_sql("DROP TRIGGER offer_versions_immutable ON offer_versions")
    op.get_bind().exec_driver_sql("DROP FUNCTION offer_versions_immutable()")
    for table in ("offer_versions", "offers", "campaigns"):
        op.drop_table(table)
    drop_audit_table()
    op.drop_table("processed_events")
    op.drop_table("outbox")
