"""players: accounts, refresh tokens, KYC submissions, protections and limits.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from gameplane.kit.migrate import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_kit_tables()
    op.create_table(
        "players",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("affiliate_click_id", sa.String(128), nullable=True),
        sa.Column("kyc_state", sa.String(16), nullable=False, server_default="unverified"),
        sa.Column("kyc_updated_at", TS, nullable=True),
        sa.Column("registered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("password_changed_at", TS, nullable=False),
        sa.Column("last_login_at", TS, nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed_window_started_at", TS, nullable=True),
        sa.Column("locked_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_players"),
        sa.UniqueConstraint("email", name="uq_players_email"),
        sa.CheckConstraint("kyc_state IN ('unverified','pending','verified','rejected')",
                           name="ck_players_kyc_state"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("family_id", UUID(as_uuid=True), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("rotated_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_reason", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], ondelete="CASCADE",
                                name="fk_refresh_tokens_player_id_players"),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_player_id", "refresh_tokens", ["player_id"])
    op.create_table(
        "kyc_submissions",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("document_type", sa.String(32), nullable=False),
        sa.Column("document_reference", sa.String(200), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_kyc_submissions"),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], ondelete="CASCADE",
                                name="fk_kyc_submissions_player_id_players"),
    )
    op.create_index("ix_kyc_submissions_player_id", "kyc_submissions", ["player_id"])
    op.create_table(
        "protections",
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("timeout_until", TS, nullable=True),
        sa.Column("self_excluded_at", TS, nullable=True),
        sa.Column("self_excluded_until", TS, nullable=True),
        sa.Column("reality_check_minutes", sa.Integer(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("player_id", name="pk_protections"),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], ondelete="CASCADE",
                                name="fk_protections_player_id_players"),
    )
    op.create_table(
        "limits",
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("pending_value", sa.BigInteger(), nullable=True),
        sa.Column("pending_effective_at", TS, nullable=True),
        sa.Column("pending_removal", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("player_id", "kind", "period", name="pk_limits"),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], ondelete="CASCADE",
                                name="fk_limits_player_id_players"),
        sa.CheckConstraint("value > 0", name="ck_limits_value_positive"),
        sa.CheckConstraint("pending_value IS NULL OR pending_value > 0", name="ck_limits_pending_positive"),
    )
    op.create_index("ix_limits_pending_due", "limits", ["pending_effective_at"],
                    postgresql_where=sa.text("pending_effective_at IS NOT NULL"))


def downgrade() -> None:
    for table in ("limits", "protections", "kyc_submissions", "refresh_tokens", "players",
                  "processed_events", "outbox"):
        op.drop_table(table)
