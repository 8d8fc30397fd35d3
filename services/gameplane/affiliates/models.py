"""Tables of the affiliates service (SQLAlchemy Core; the migrations create them).

`player_days` holds every player's money per UTC day and currency, fed by wallet events (whether or
not the player is referred: a wallet event may overtake the registration it follows); statements
read the referred players' rows. `statements` rows are final: a trigger refuses UPDATE and DELETE.
Addresses of clickers are stored only as a SHA-256 digest (duplicate detection needs no more).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Integer, String, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from gameplane.kit.audit import add_audit_table
from gameplane.kit.db import make_base

Base = make_base()
metadata = Base.metadata
add_audit_table(metadata)
TS = DateTime(timezone=True)

affiliates = Table(
    "affiliates", metadata,
    Column("affiliate_id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", UUID(as_uuid=True), nullable=True),
    Column("override_bp", Integer, nullable=False),
    Column("postback_url", Text, nullable=True),
    Column("postback_secret", String(100), nullable=False),
    Column("api_key_hash", String(64), nullable=False, unique=True),
    Column("deal", JSONB, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", TS, nullable=False),
    Index("ix_affiliates_parent_id", "parent_id"),
)

links = Table(
    "links", metadata,
    Column("link_id", UUID(as_uuid=True), primary_key=True),
    Column("affiliate_id", UUID(as_uuid=True), nullable=False),
    Column("code", String(64), nullable=False, unique=True),
    Column("landing_url", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_links_affiliate_id", "affiliate_id"),
)

clicks = Table(
    "clicks", metadata,
    Column("click_id", String(64), primary_key=True),
    Column("link_id", UUID(as_uuid=True), nullable=False),
    Column("affiliate_id", UUID(as_uuid=True), nullable=False),
    Column("sub_ids", JSONB, nullable=False),
    Column("ip_hash", String(64), nullable=False),
    Column("ua_hash", String(64), nullable=False),
    Column("flag", String(16), nullable=True),  # bot | duplicate: recorded, never attributed
    Column("clicked_at", TS, nullable=False),
    Index("ix_clicks_dedupe", "link_id", "ip_hash", "ua_hash", "clicked_at"),
)

attributions = Table(
    "attributions", metadata,
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("player_ref", String(40), nullable=False, unique=True),
    Column("affiliate_id", UUID(as_uuid=True), nullable=True),
    Column("click_id", String(64), nullable=True),
    Column("link_id", UUID(as_uuid=True), nullable=True),
    Column("sub_ids", JSONB, nullable=False),
    Column("reason", String(32), nullable=True),  # why not attributed (NULL: attributed)
    Column("country", String(2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("registered_at", TS, nullable=False),
    Column("qualified_at", TS, nullable=True),
    Index("ix_attributions_affiliate_id", "affiliate_id"),
)

first_deposits = Table(
    "first_deposits", metadata,
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("deposited_at", TS, nullable=False),
)

player_days = Table(
    "player_days", metadata,
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("day", Date, primary_key=True),
    *(Column(n, BigInteger, nullable=False, server_default=text("0"))
      for n in ("stakes", "wins", "bonus_stakes", "bonus_wins", "bonus_converted", "payment_fees", "deposits",
                "withdrawals")),
)

postbacks = Table(
    "postbacks", metadata,
    Column("postback_id", UUID(as_uuid=True), primary_key=True),
    Column("affiliate_id", UUID(as_uuid=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("player_id", UUID(as_uuid=True), nullable=False),
    Column("body", Text, nullable=False),  # the exact bytes signed and sent on every attempt
    Column("state", String(8), nullable=False),  # pending | acked
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_at", TS, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("acked_at", TS, nullable=True),
    Index("ux_postbacks_once", "affiliate_id", "kind", "player_id", unique=True),
    Index("ix_postbacks_due", "next_at", postgresql_where=text("state = 'pending'")),
)

statements = Table(
    "statements", metadata,
    Column("affiliate_id", UUID(as_uuid=True), primary_key=True),
    Column("month", Date, primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("body", JSONB, nullable=False),
    Column("commission", BigInteger, nullable=False),
    Column("carry_out", BigInteger, nullable=False),
    Column("closed_at", TS, nullable=False),
)

closed_months = Table(
    "closed_months", metadata,
    Column("month", Date, primary_key=True),
    Column("closed_at", TS, nullable=False),
    Column("closed_by", String(200), nullable=False),
)
