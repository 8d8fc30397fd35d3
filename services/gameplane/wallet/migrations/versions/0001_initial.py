# ruff: noqa: E501  (Alembic op listings read best one column per line, unwrapped)
"""wallet: accounts, transactions, entries, idempotency, rounds, holds, bonus grants, protection

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from gameplane.kit.migrate import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables()
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('shard', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('balance', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('cash','bonus','withdrawal_hold','house','psp_clearing','provider_clearing','bonus_liability','bonus_cost','affiliate_payable','world')", name=op.f('ck_accounts_kind_known')),
    sa.CheckConstraint("owner = 'platform' OR balance >= 0", name=op.f('ck_accounts_player_non_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('owner', 'kind', 'currency', 'shard', name='uq_accounts_owner_kind_currency_shard')
    )
    op.create_table('bonus_grants',
    sa.Column('grant_id', sa.String(length=200), nullable=False),
    sa.Column('player_id', sa.UUID(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('grant_id', name=op.f('pk_bonus_grants'))
    )
    op.create_table('holds',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('player_id', sa.UUID(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('remaining >= 0 AND remaining <= amount', name=op.f('ck_holds_remaining_in_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holds'))
    )
    op.create_index('ix_holds_open_expiry', 'holds', ['expires_at'], unique=False, postgresql_where=sa.text("state = 'open'"))
    op.create_table('operations',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('transaction_id', sa.UUID(), nullable=True),
    sa.Column('response', postgresql.JSONB(), nullable=True),
    sa.Column('rolled_back_by', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_operations'))
    )
    op.create_table('protection',
    sa.Column('player_id', sa.UUID(), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('limits', postgresql.JSONB(), server_default=sa.text("'[]'"), nullable=False),
    sa.Column('timeout_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('self_excluded_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('player_id', name=op.f('pk_protection'))
    )
    op.create_table('rounds',
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('player_id', sa.UUID(), nullable=False),
    sa.Column('round_id', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('game_id', sa.String(length=200), nullable=False),
    sa.Column('stake_cash', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('stake_bonus', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('won', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('closed', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('paid_out', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('provider', 'player_id', 'round_id', name=op.f('pk_rounds'))
    )
    op.create_table('transactions',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('player_id', sa.UUID(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('cash', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('bonus', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('reverses', sa.UUID(), nullable=True),
    sa.Column('details', postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transactions')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_transactions_idempotency_key')),
    sa.UniqueConstraint('seq', name=op.f('uq_transactions_seq'))
    )
    op.create_index('ix_transactions_player_kind_created', 'transactions', ['player_id', 'kind', 'created_at'], unique=False)
    op.create_index('ix_transactions_player_seq', 'transactions', ['player_id', 'seq'], unique=False)
    op.create_index('uq_transactions_reverses', 'transactions', ['reverses'], unique=True, postgresql_where=sa.text('reverses IS NOT NULL'))
    op.create_table('entries',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('transaction_id', sa.UUID(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_entries_non_zero')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_entries_account_id_accounts')),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], name=op.f('fk_entries_transaction_id_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entries'))
    )
    op.create_index('ix_entries_account', 'entries', ['account_id'], unique=False)
    op.create_index('ix_entries_transaction', 'entries', ['transaction_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_entries_transaction', table_name='entries')
    op.drop_index('ix_entries_account', table_name='entries')
    op.drop_table('entries')
    op.drop_index('uq_transactions_reverses', table_name='transactions', postgresql_where=sa.text('reverses IS NOT NULL'))
    op.drop_index('ix_transactions_player_seq', table_name='transactions')
    op.drop_index('ix_transactions_player_kind_created', table_name='transactions')
    op.drop_table('transactions')
    op.drop_table('rounds')
    op.drop_table('protection')
    op.drop_table('operations')
    op.drop_index('ix_holds_open_expiry', table_name='holds', postgresql_where=sa.text("state = 'open'"))
    op.drop_table('holds')
    op.drop_table('bonus_grants')
    op.drop_table('accounts')
    op.drop_table("processed_events")
    op.drop_table("outbox")
