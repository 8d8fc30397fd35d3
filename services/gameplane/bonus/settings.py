"""Settings of the bonus service (GP_BONUS_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameplane.contracts.jurisdiction import JurisdictionName, JurisdictionProfile, profile
from gameplane.kit.settings import ServiceSettings, settings_config


class BonusSettings(ServiceSettings):
    service_name: ClassVar[str] = "bonus"
    model_config = settings_config("bonus")

    port: int = 8006
    jurisdiction: JurisdictionName = Field(default="none", description="profile of gameplane.contracts."
                                           "jurisdiction whose bonus caps offers must respect")
    sweep_interval_seconds: float = Field(default=5.0, gt=0, description="how often the worker retries owed "
                                          "wallet/games calls, expires grants, pays cashback, refreshes gauges")
    game_cache_seconds: float = Field(default=300.0, ge=0, description="how long a game's category read from "
                                      "games is trusted")
    round_retention_days: int = Field(default=7, ge=1, description="settled bets are kept this long (a late "
                                      "rollback of an older bet can no longer be taken back from progress)")

    cashback_grace_seconds: float = Field(default=300.0, ge=0, description="a cashback period is paid this long "
                                          "after it ends, so that play events of its last moments are counted")

    @property
    def profile(self) -> JurisdictionProfile:
        return profile(self.jurisdiction)
