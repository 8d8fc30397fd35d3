"""risk: rule set versions (the default set as version 1), decisions, cases, the feature store,
the staff audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import json
from importlib import resources

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


def upgrade() -> None:
    create_kit_tables()
    create_audit_table()
    rule_sets = op.create_table(
        "rule_sets",
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("document", JSONB(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("method_fingerprint", sa.String(200), nullable=True),
        sa.Column("ip", sa.String(100), nullable=True),
        sa.Column("device_id", sa.String(200), nullable=True),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("rules", ARRAY(sa.Text()), nullable=False),
        sa.Column("rules_version", sa.Integer(), nullable=False),
        sa.Column("case_id", UUID(as_uuid=True), nullable=True),
        sa.Column("decided_at", TS, nullable=False),
    )
    op.create_index("uq_decisions_kind_reference", "decisions", ["kind", "reference"], unique=True)
    op.create_index("ix_decisions_player_decided", "decisions", ["player_id", "decided_at"])
    op.create_table(
        "cases",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("decision_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("player_id", UUID(as_uuid=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("rules", ARRAY(sa.Text()), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("assigned_at", TS, nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("state IN ('open', 'approved', 'rejected')", name="state"),
    )
    op.create_index("ix_cases_state_opened", "cases", ["state", "opened_at"])
    op.create_table(
        "player_features",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("registered_at", TS, nullable=True),
        sa.Column("last_deposit_amount", sa.BigInteger(), nullable=True),
        sa.Column("last_deposit_at", TS, nullable=True),
        sa.Column("wagered_since_deposit", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("won_since_deposit", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_bet_at", TS, nullable=True),
        sa.Column("last_ip", sa.String(100), nullable=True),
        sa.Column("last_device", sa.String(200), nullable=True),
        sa.Column("harm_score", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("harm_rules", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("harm_at", TS, nullable=True),
    )
    op.create_index("ix_player_features_harm", "player_features", ["harm_score"],
                    postgresql_where=sa.text("harm_score > 0"))
    op.create_table(
        "feature_buckets",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("feature", sa.String(32), primary_key=True),
        sa.Column("span", sa.Integer(), primary_key=True),
        sa.Column("start", TS, primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_feature_buckets_span_start", "feature_buckets", ["span", "start"])
    op.create_table(
        "deposit_methods",
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("fingerprint", sa.String(200), primary_key=True),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
    )
    op.create_table(
        "identity_links",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
        sa.Column("player_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
    )
    # Version 1: the default rule set of the release that creates the database. Changes after that
    # are new versions published through the back office.
    document = json.loads((resources.files("gameplane.risk") / "default_rules.json").read_text())
    op.execute(rule_sets.insert().values(version=1, document=document, created_at=sa.func.now(),
                                         created_by="system", reason="initial rule set"))


def downgrade() -> None:
    for table in ("identity_links", "deposit_methods", "feature_buckets", "player_features", "cases",
                  "decisions", "rule_sets"):
        op.drop_table(table)
    drop_audit_table()
    op.drop_table("processed_events")
    op.drop_table("outbox")
