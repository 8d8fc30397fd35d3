"""Settings of the affiliates service (GP_AFFILIATES_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameplane.contracts.jurisdiction import JurisdictionName, JurisdictionProfile, profile
from gameplane.kit.settings import ServiceSettings, settings_config


class AffiliatesSettings(ServiceSettings):
    service_name: ClassVar[str] = "affiliates"
    model_config = settings_config("affiliates")

    port: int = 8008
    jurisdiction: JurisdictionName = Field(default="none", description="profile of gameplane.contracts."
                                           "jurisdiction whose gaming tax statements deduct from NGR")
    duplicate_click_seconds: float = Field(default=3600.0, ge=0, description="a click on the same link from "
                                           "the same address and user agent within this long is a duplicate")
    postback_interval_seconds: float = Field(default=1.0, gt=0, description="how often due postbacks are sent")
    postback_backoff_seconds: float = Field(default=5.0, gt=0, description="delay after the first failure; "
                                            "doubled after each further one (with jitter)")
    postback_backoff_max_seconds: float = Field(default=3600.0, gt=0, description="longest delay between attempts")
    postback_timeout_seconds: float = Field(default=5.0, gt=0, description="one postback request, whole exchange")
    postback_lease_seconds: float = Field(default=60.0, gt=0, description="a postback being sent is not picked "
                                          "again by another replica for this long")

    @property
    def profile(self) -> JurisdictionProfile:
        return profile(self.jurisdiction)
