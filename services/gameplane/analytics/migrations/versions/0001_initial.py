"""analytics: partitioned fact tables, rollups, rounds, player and game dimensions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from gameplane.kit.migrate import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Sums kept per rollup row: contracts.kpis.INPUTS plus what the API reports beside them.
_SUMS = ("stakes", "wins", "bonus_stakes", "bonus_wins", "bonus_converted", "payment_fees", "deposits",
         "withdrawals", "bonus_granted", "free_spin_wins", "bonus_forfeited", "chargebacks", "adjustments",
         "bets", "ftd")
_SUM_COLUMNS = ", ".join(f"{c} bigint NOT NULL DEFAULT 0" for c in _SUMS)

STATEMENTS = (
    # event_id is the envelope's id: with the partition key in the primary key, a replayed event
    # (same id, same occurred_at, so same day) conflicts and lands once.
    "CREATE TABLE money_facts ("
    " day date NOT NULL, event_id uuid NOT NULL, occurred_at timestamptz NOT NULL, kind text NOT NULL,"
    " transaction_id uuid NOT NULL, player_id uuid NOT NULL, currency char(3) NOT NULL,"
    " amount bigint NOT NULL, cash bigint NOT NULL, bonus bigint NOT NULL,"
    " game_id text NOT NULL DEFAULT '', provider text NOT NULL DEFAULT '', round_id text,"
    " reference text, ingested_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (day, event_id)) PARTITION BY RANGE (day)",
    "CREATE TABLE player_facts ("
    " day date NOT NULL, event_id uuid NOT NULL, occurred_at timestamptz NOT NULL, kind text NOT NULL,"
    " player_id uuid NOT NULL, detail text, ingested_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (day, event_id)) PARTITION BY RANGE (day)",
    "CREATE INDEX ix_player_facts_kind ON player_facts (kind, day)",
    f"CREATE TABLE rollup_day (day date NOT NULL, currency char(3) NOT NULL, game_id text NOT NULL,"
    f" provider text NOT NULL, {_SUM_COLUMNS}, PRIMARY KEY (day, currency, game_id, provider))",
    "CREATE INDEX ix_rollup_day_game ON rollup_day (game_id, day)",
    f"CREATE TABLE rollup_player_day (day date NOT NULL, currency char(3) NOT NULL, player_id uuid NOT NULL,"
    f" game_id text NOT NULL, provider text NOT NULL, {_SUM_COLUMNS},"
    f" PRIMARY KEY (day, currency, player_id, game_id, provider))",
    "CREATE INDEX ix_rollup_player_day_player ON rollup_player_day (player_id)",
    # a game's active players over a period (the KPI API filtered by game)
    "CREATE INDEX ix_rollup_player_day_game ON rollup_player_day (game_id, day)",
    "CREATE TABLE rounds (provider text NOT NULL, player_id uuid NOT NULL, round_id text NOT NULL,"
    " currency char(3) NOT NULL, game_id text NOT NULL, day date NOT NULL,"
    " stake bigint NOT NULL DEFAULT 0, win bigint NOT NULL DEFAULT 0,"
    " PRIMARY KEY (provider, player_id, round_id))",
    "CREATE INDEX ix_rounds_game_day ON rounds (game_id, day)",
    "CREATE TABLE players (player_id uuid PRIMARY KEY, country text, currency char(3),"
    " registered_at timestamptz, registered_day date, affiliate_id uuid, attributed_at timestamptz)",
    "CREATE INDEX ix_players_registered_day ON players (registered_day)",
    "CREATE INDEX ix_players_affiliate ON players (affiliate_id)",
    "CREATE TABLE games (game_id text PRIMARY KEY, provider text NOT NULL, category text NOT NULL,"
    " rtp_bp integer NOT NULL, fetched_at timestamptz NOT NULL)",
)


def upgrade() -> None:
    create_kit_tables()
    bind = op.get_bind()
    for stmt in STATEMENTS:
        bind.exec_driver_sql(stmt)


def downgrade() -> None:
    for table in ("games", "players", "rounds", "rollup_player_day", "rollup_day", "player_facts", "money_facts",
                  "processed_events", "outbox"):
        op.drop_table(table)
