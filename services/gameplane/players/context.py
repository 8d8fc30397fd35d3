"""What the players workflows need at hand: database, settings, hasher and the clock.

The clock is injected so tests can move time (cooling-off periods, time-outs) without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gameplane.contracts.jurisdiction import JurisdictionProfile
from gameplane.kit.db import Database
from gameplane.kit.keys import SigningKey
from gameplane.players.passwords import Passwords
from gameplane.players.settings import PlayersSettings

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class PlayersContext:
    db: Database
    settings: PlayersSettings
    passwords: Passwords
    signing_key: SigningKey  # players' own key: signs access (and staff) tokens, published as JWKS
    clock: Clock = field(default=system_clock)

    @property
    def profile(self) -> JurisdictionProfile:
        return self.settings.profile

    def now(self) -> datetime:
        return self.clock()
