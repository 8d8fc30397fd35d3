"""Settings of the analytics service (GP_ANALYTICS_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameplane.contracts.jurisdiction import JurisdictionName, profile
from gameplane.kit.settings import ServiceSettings, settings_config


class AnalyticsSettings(ServiceSettings):
    service_name: ClassVar[str] = "analytics"
    model_config = settings_config("analytics")

    port: int = 8009
    jurisdiction: JurisdictionName = Field(default="none", description="profile of gameplane.contracts."
                                           "jurisdiction whose gaming duty NGR subtracts")
    play_consumers: int = Field(default=2, ge=1, le=8, description="fetch loops sharing each of the bet and "
                                "win durables (one transaction each at a time)")
    partitions_ahead_days: int = Field(default=7, ge=1, description="daily fact partitions created ahead of "
                                       "today (and behind it) at start and by the maintenance loop")
    maintenance_interval_seconds: float = Field(default=3600.0, gt=0, description="how often partitions "
                                                "ahead are created and the lag gauges refreshed")
    lag_interval_seconds: float = Field(default=15.0, gt=0, description="how often the consumers' pending "
                                        "counts are read from JetStream (the ingest-lag alert's gauge)")
    rtp_check_interval_seconds: float = Field(default=300.0, gt=0, description="how often observed RTP per "
                                              "game is checked against the certified value (the drift gauges)")
    rtp_window_days: int = Field(default=7, ge=1, le=366, description="days of settled rounds the drift "
                                 "gauges judge by")
    game_cache_seconds: float = Field(default=3600.0, ge=0, description="how long a game's certified RTP read "
                                      "from games is trusted")

    @property
    def tax_basis_points(self) -> int:
        return profile(self.jurisdiction).gaming_tax_basis_points
