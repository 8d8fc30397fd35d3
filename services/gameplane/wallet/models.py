"""The ledger's tables. The hot path uses Core SQL against these; nothing here is ORM-loaded.

accounts      one row per (owner, kind, currency, shard); the balance lives on the row
transactions  immutable; one per idempotency key (a rollback that found no bet still gets one)
entries       immutable postings; sum to zero per transaction
operations    the idempotency record: key, request hash, stored answer; a `tombstone` row is a
              rollback that arrived before its bet and blocks that bet's key forever
rounds        game round state for the rollback/close rules
holds         withdrawal holds (two-phase)
bonus_grants  one row per grant: its balance (the player's bonus account is the sum of their open
              grants' balances), max stake, spend priority, state
grant_entries the grants' sub-ledger: per transaction, what it moved on which grant (a grant's
              balance is the sum of its entries; migration 0008)
protection    the newest responsible-gaming snapshot per player, fed by players events
audit_log     staff actions (manual adjustments), append-only (gameplane.kit.audit)
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from gameplane.kit.audit import add_audit_table
from gameplane.kit.db import make_base

Base = make_base()
md = Base.metadata
add_audit_table(md)

PLAYER_KINDS = ("cash", "bonus", "withdrawal_hold", "receivable")
PLATFORM_KINDS = ("house", "psp_clearing", "provider_clearing", "bonus_liability", "bonus_cost",
                  "affiliate_payable", "world", "payment_fees")
PLATFORM_OWNER = "platform"

accounts = Table(
    "accounts", md,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # a player's UUID as text, or "platform"
    Column("owner", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("shard", Integer, nullable=False, server_default=text("0")),
    Column("balance", BigInteger, nullable=False, server_default=text("0")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("owner", "kind", "currency", "shard", name="uq_accounts_owner_kind_currency_shard"),
    # the database itself refuses a negative player balance, whatever the code does; a receivable (the
    # player's debt after a chargeback, gameplane.wallet.ledger.RECEIVABLE) is the one player account
    # at or below zero (migration 0007)
    CheckConstraint("owner = 'platform' OR kind = 'receivable' OR balance >= 0", name="player_non_negative"),
    CheckConstraint("kind <> 'receivable' OR balance <= 0", name="receivable_non_positive"),
    CheckConstraint(
        "kind IN ('cash','bonus','withdrawal_hold','receivable','house','psp_clearing','provider_clearing',"
        "'bonus_liability','bonus_cost','affiliate_payable','world','payment_fees')", name="kind_known"),
)

transactions = Table(
    "transactions", md,
    # history order and pagination cursor
    Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("player_id", UUID(as_uuid=True), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("cash", BigInteger, nullable=False, server_default=text("0")),
    Column("bonus", BigInteger, nullable=False, server_default=text("0")),
    Column("reverses", UUID(as_uuid=True), nullable=True),
    Column("details", JSONB, nullable=False, server_default=text("'{}'")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_transactions_player_seq", "player_id", "seq"),
    Index("ix_transactions_player_kind_created", "player_id", "kind", "created_at"),
    Index("uq_transactions_reverses", "reverses", unique=True, postgresql_where=text("reverses IS NOT NULL")),
)

entries = Table(
    "entries", md,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("transaction_id", UUID(as_uuid=True), ForeignKey("transactions.id"), nullable=False),
    Column("account_id", BigInteger, ForeignKey("accounts.id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount <> 0", name="non_zero"),
    Index("ix_entries_transaction", "transaction_id"),
    Index("ix_entries_account", "account_id"),
)

operations = Table(
    "operations", md,
    Column("key", String(200), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("transaction_id", UUID(as_uuid=True), nullable=True),
    Column("response", JSONB, nullable=True),
    # for bets: the rollback transaction that undid it
    Column("rolled_back_by", UUID(as_uuid=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

rounds = Table(
    "rounds", md,
    Column("provider", String(100), primary_key=True),
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("round_id", String(200), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("game_id", String(200), nullable=False),
    Column("stake_cash", BigInteger, nullable=False, server_default=text("0")),
    Column("stake_bonus", BigInteger, nullable=False, server_default=text("0")),
    Column("won", BigInteger, nullable=False, server_default=text("0")),
    Column("closed", Boolean, nullable=False, server_default=text("false")),
    Column("paid_out", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # the bonus part of the round's stake per grant (grant_id -> minor units): wins follow it
    Column("stake_grants", JSONB, nullable=False, server_default=text("'{}'")),
)

holds = Table(
    "holds", md,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("player_id", UUID(as_uuid=True), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
    Index("ix_holds_open_expiry", "expires_at", postgresql_where=text("state = 'open'")),
)

bonus_grants = Table(
    "bonus_grants", md,
    Column("grant_id", String(200), primary_key=True),
    Column("player_id", UUID(as_uuid=True), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    # 'active' (open), 'converted', 'forfeited'
    Column("state", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("balance", BigInteger, nullable=False, server_default=text("0")),
    Column("max_stake", BigInteger, nullable=True),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("balance >= 0", name="balance_non_negative"),
    CheckConstraint("state = 'active' OR balance = 0", name="closed_is_empty"),
    Index("ix_bonus_grants_open", "player_id", "currency", "priority", "created_at", "grant_id",
          postgresql_where=text("state = 'active'")),
)

grant_entries = Table(
    "grant_entries", md,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("transaction_id", UUID(as_uuid=True), ForeignKey("transactions.id"), nullable=False),
    Column("grant_id", String(200), ForeignKey("bonus_grants.grant_id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount <> 0", name="non_zero"),
    Index("ix_grant_entries_grant", "grant_id"),
    Index("ix_grant_entries_transaction", "transaction_id"),
)

protection = Table(
    "protection", md,
    Column("player_id", UUID(as_uuid=True), primary_key=True),
    Column("revision", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("limits", JSONB, nullable=False, server_default=text("'[]'")),
    Column("timeout_until", DateTime(timezone=True), nullable=True),
    Column("self_excluded_until", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
