"""Settings of the risk service (GP_RISK_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameplane.kit.settings import ServiceSettings, settings_config


class RiskSettings(ServiceSettings):
    service_name: ClassVar[str] = "risk"
    model_config = settings_config("risk")

    port: int = 8007
    sweep_interval_seconds: float = Field(default=30.0, gt=0, description="how often expired feature buckets "
                                          "are deleted and the open-case and harm gauges refreshed")
    harm_levels: tuple[int, int, int] = Field(default=(1, 300, 600), description="harm scores from which a "
                                              "player counts as low, medium and high in the harm gauge")
