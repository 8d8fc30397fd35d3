"""Tables of the bonus service (SQLAlchemy Core; the migrations create them).

Offers are versioned: `offer_versions` rows are never updated or deleted (a trigger refuses it),
grants keep the version they were made from. `players` is bonus's copy of what it needs from the
players service (country, protection), fed by players' events, plus the segments the back office
sets. Bets are remembered per round until the round settles (`round_bets`), so that progress counts
settled stakes only and a rolled-back bet never counts.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from gameplane.kit.audit import add_audit_table
from gameplane.kit.db import make_base

Base = make_base()
metadata = Base.metadata
add_audit_table(metadata)
TS = DateTime(timezone=True)
OPEN_STATES = "('issued', 'active', 'wagering')"

campaigns = Table(
    "campaigns", metadata,
    Column("campaign_id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("starts_at", TS, nullable=True),
    Column("ends_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
)

offers = Table(
    "offers", metadata,
    Column("offer_id", UUID(as_uuid=True), primary_key=True),
    Column("campaign_id", UUID(as_uuid=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("state", String(8), nullable=False),  # draft | live | retired
    Column("live_version", Integer, nullable=True),
    Column("versions", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_offers_state", "state"),
)

offer_versions = Table(
    "offer_versions", metadata,
    Column("offer_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("terms", JSONB, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(200), nullable=False),
)

players = Table(
    "players", metadata,
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("country", String(2), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("registered_at", TS, nullable=True),
    Column("segments", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("protection_revision", Integer, nullable=False, server_default=text("0")),
    Column("self_excluded_until", TS, nullable=True),
    Column("timeout_until", TS, nullable=True),
    Column("deposits", Integer, nullable=False, server_default=text("0")),
)

opt_ins = Table(
    "opt_ins", metadata,
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("offer_id", UUID(as_uuid=True), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("opted_in_at", TS, nullable=False),
    Column("period_ends_at", TS, nullable=True),  # cashback
    Column("settled", Boolean, nullable=False, server_default=text("false")),  # matched / paid / lapsed
    Index("ix_opt_ins_open_cashback", "period_ends_at", postgresql_where=text("NOT settled AND kind = 'cashback'")),
)

grants = Table(
    "grants", metadata,
    Column("grant_id", UUID(as_uuid=True), primary_key=True),
    Column("player_id", UUID(as_uuid=True), nullable=False),
    Column("offer_id", UUID(as_uuid=True), nullable=False),
    Column("offer_version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("deposit_amount", BigInteger, nullable=False, server_default=text("0")),
    Column("wagering_multiplier", Integer, nullable=False),
    Column("wagering_required", BigInteger, nullable=False),
    Column("wagered", BigInteger, nullable=False, server_default=text("0")),
    Column("contributions", JSONB, nullable=False),
    Column("state", String(12), nullable=False),
    Column("max_stake", BigInteger, nullable=True),
    Column("cashout_cap", BigInteger, nullable=True),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("forfeit_on_withdrawal", Boolean, nullable=False),
    Column("spins", Integer, nullable=True),
    Column("spins_played", Integer, nullable=False, server_default=text("0")),
    Column("game_id", String(100), nullable=True),
    Column("spin_stake", BigInteger, nullable=True),
    Column("expires_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("closed_at", TS, nullable=True),
    Column("converted", BigInteger, nullable=True),
    Column("reason", Text, nullable=True),
    Column("source", String(16), nullable=False),  # opt-in | deposit | cashback | manual
    # a call still owed to the wallet / games (grant | convert | forfeit); the worker retries it
    Column("pending", String(8), nullable=True),
    Column("wallet_granted", Boolean, nullable=False, server_default=text("false")),
    Index("uq_grants_player_offer", "player_id", "offer_id", unique=True),
    Index("ix_grants_open", "player_id", "currency", "created_at",
          postgresql_where=text(f"state IN {OPEN_STATES}")),
    Index("ix_grants_pending", "created_at", postgresql_where=text("pending IS NOT NULL")),
    Index("ix_grants_expiry", "expires_at", postgresql_where=text(f"state IN {OPEN_STATES}")),
)

round_bets = Table(
    "round_bets", metadata,
    # the wallet's transaction id of the bet; a rollback seen before its bet leaves a tombstone
    Column("bet_tx", UUID(as_uuid=True), primary_key=True),
    Column("player_id", UUID(as_uuid=True), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("round_id", String(200), nullable=False),
    Column("game_id", String(200), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),  # open | counted | rolled_back
    Column("grant_id", UUID(as_uuid=True), nullable=True),
    Column("contributed", BigInteger, nullable=False, server_default=text("0")),
    Column("seen_at", TS, nullable=False),
    Index("ix_round_bets_round", "player_id", "round_id"),
    Index("ix_round_bets_seen", "seen_at"),
)

closed_rounds = Table(
    "closed_rounds", metadata,
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("round_id", String(200), primary_key=True),
    Column("closed_at", TS, nullable=False),
    Index("ix_closed_rounds_closed", "closed_at"),
)

play_days = Table(
    "play_days", metadata,
    # stakes and wins of players enrolled in a cashback offer, per day (net losses over a period)
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("staked", BigInteger, nullable=False),
    Column("won", BigInteger, nullable=False),
)
