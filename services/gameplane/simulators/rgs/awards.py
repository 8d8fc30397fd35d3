"""Free-spin awards the platform gave this studio: received on its signed award API, played when
the player next spins (no bet; the award's stake decides the outcome's pay)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from gameplane.contracts.games import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ProviderFreeSpinAward,
    signature_valid,
    unix_timestamp,
)
from gameplane.simulators.rgs import slot

CLOCK_SKEW_SECONDS = 300
# Refusals after which an award cannot pay another spin: the studio stops playing it.
SPENT_CODES = frozenset({"free-spins-exhausted", "free-spin-award-expired", "free-spin-award-not-found",
                         "free-spin-award-mismatch", "free-spin-grant-closed"})


@dataclass
class HeldAward:
    award: ProviderFreeSpinAward
    played: int = 0
    spent: bool = False

    def playable(self, player_id: str, game_id: str, currency: str, now: datetime) -> bool:
        a = self.award
        return (not self.spent and self.played < a.spins and str(a.player_id) == player_id and a.game_id == game_id
                and a.currency == currency and now < a.expires_at)


def signature_refusal(secret: str, method: str, path: str, body: bytes, headers: dict[str, str]) -> str | None:
    """Why a call claiming to be the platform's is refused, or None: the platform signs awards with
    our provider key in the canonical scheme, over the path as we receive it."""
    stamp = headers.get(TIMESTAMP_HEADER.lower()) or ""
    if not signature_valid(secret, method, path, stamp, body, headers.get(SIGNATURE_HEADER.lower())):
        return "invalid-signature"
    sent = unix_timestamp(stamp)
    if sent is None or abs(sent - time.time()) > CLOCK_SKEW_SECONDS:
        return "stale-request"
    return None


def terms_refusal(award: ProviderFreeSpinAward) -> str | None:
    if award.game_id != slot.GAME_ID:
        return f"this studio has no game {award.game_id!r}"
    if award.stake % len(slot.LINES):
        return f"stake {award.stake} does not split over the {len(slot.LINES)} lines"
    if award.expires_at <= datetime.now(UTC):
        return "the award has already expired"
    return None


def next_award(awards: dict[str, HeldAward], player_id: str, game_id: str, currency: str) -> HeldAward | None:
    now = datetime.now(UTC)
    ready = [h for h in awards.values() if h.playable(player_id, game_id, currency, now)]
    return min(ready, key=lambda h: (h.award.expires_at, h.award.award_id)) if ready else None


def spins_left(awards: dict[str, HeldAward], player_id: str, game_id: str, currency: str) -> int:
    """Free spins the player's next spins will play (the page shows them before they are played)."""
    now = datetime.now(UTC)
    return sum(h.award.spins - h.played for h in awards.values() if h.playable(player_id, game_id, currency, now))
