"""The analytics tables. Written as SQL in migrations/ (declarative partitioning has no model form
alembic could compare); the column lists live in gameplane.analytics.facts.

money_facts    append-only, one row per wallet event (its id), PARTITIONED BY RANGE (day): one
               partition per UTC day, created ahead and on demand (partitions.py)
player_facts   append-only registrations, logins, game sessions; partitioned like money_facts
rollup_day     per day x currency x game x provider: the summed inputs (facts' sums, kept in the
               transaction that inserts the facts)
rollup_player_day  the same per player as well: the filters by country and affiliate join the
               player dimension at query time, so an attribution that arrives after the bets still
               filters them
rounds         per game round: its stake and win after rollbacks (RTP moments)
players        the player dimension: country, currency, registration, affiliate
games          the game dimension: provider, category, certified RTP (from games, cached)
"""

from __future__ import annotations

from gameplane.kit.db import make_base

Base = make_base()
