"""What the engine knows about a player at one moment: a feature snapshot (pure data), and the
bucket arithmetic the feature store uses to keep it.

The store keeps, per player and feature, a count and a sum of amounts in 5-minute buckets (kept a
little over a day) and in day buckets (kept a little over four weeks); a window is the sum of the
buckets that end inside it, so a decision reads a handful of rows of one player instead of raw
events. gameplane.risk.store reads and writes them; this module only says how.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gameplane.risk.rules import WINDOW_SECONDS

MINUTE_SPAN = 300  # seconds of a short bucket
DAY_SPAN = 86_400
SHORT_WINDOWS = ("5m", "1h", "1d")
LONG_WINDOWS = ("7d", "28d")
WINDOWS = (*SHORT_WINDOWS, *LONG_WINDOWS)
LINK_WINDOWS = ("1d", "7d", "28d")
# How long buckets are kept: a little longer than the longest window read from them.
SHORT_RETENTION = timedelta(seconds=WINDOW_SECONDS["1d"] + 2 * MINUTE_SPAN)
LONG_RETENTION = timedelta(seconds=WINDOW_SECONDS["28d"] + 2 * DAY_SPAN)


def bucket_start(at: datetime, span: int) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % span, UTC)


def buckets_of(at: datetime) -> tuple[tuple[int, datetime], tuple[int, datetime]]:
    """The (span, start) of the short and the day bucket an event at `at` counts in."""
    return (MINUTE_SPAN, bucket_start(at, MINUTE_SPAN)), (DAY_SPAN, bucket_start(at, DAY_SPAN))


def window_cutoffs(now: datetime) -> dict[str, datetime]:
    """Per window, the earliest bucket start it counts: buckets that end after now - window."""
    out: dict[str, datetime] = {}
    for name in WINDOWS:
        span = MINUTE_SPAN if name in SHORT_WINDOWS else DAY_SPAN
        out[name] = now - timedelta(seconds=WINDOW_SECONDS[name] + span)
    return out


def is_night(at: datetime) -> bool:
    """Late-night play, a marker of harm: 00:00 to 06:00 UTC (players' own time zones are not known)."""
    return at.astimezone(UTC).hour < 6


@dataclass(frozen=True, slots=True)
class Totals:
    count: int = 0
    total: int = 0

    def plus(self, amount: int) -> Totals:
        return Totals(self.count + 1, self.total + amount)


ZERO = Totals()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One player's features at `now`. `windows[(feature, window)]` holds what happened in that
    window; `links[(key, window)]` how many accounts (this one included) used the address or
    device in question within the window."""

    player_id: uuid.UUID
    now: datetime
    windows: Mapping[tuple[str, str], Totals] = field(default_factory=dict)
    methods: Mapping[str, datetime] = field(default_factory=dict)  # deposit method -> last used
    links: Mapping[tuple[str, str], int] = field(default_factory=dict)
    last_deposit_amount: int | None = None
    last_deposit_at: datetime | None = None
    wagered_since_deposit: int = 0
    won_since_deposit: int = 0
    last_bet_at: datetime | None = None

    def totals(self, feature: str, window: str) -> Totals:
        return self.windows.get((feature, window), ZERO)

    def accounts(self, key: str, window: str) -> int:
        return self.links.get((key, window), 0)


def is_chase(snap: Snapshot, at: datetime, loss_pct: int, within: timedelta) -> bool:
    """A deposit at `at` chases losses: since the previous deposit the player lost at least
    `loss_pct` % of it, and bet within `within` before this one."""
    if not snap.last_deposit_amount or snap.last_bet_at is None:
        return False
    lost = snap.wagered_since_deposit - snap.won_since_deposit
    return lost * 100 >= loss_pct * snap.last_deposit_amount and at - snap.last_bet_at <= within
