"""Settings of the back office (GP_BACKOFFICE_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameplane.kit.settings import ServiceSettings, settings_config
from gameplane.kit.staff import STAFF_TOKEN_TTL


class BackofficeSettings(ServiceSettings):
    service_name: ClassVar[str] = "backoffice"
    model_config = settings_config("backoffice")

    port: int = 8011
    session_ttl_seconds: int = Field(default=STAFF_TOKEN_TTL, gt=0, le=3600, description=(
        "lifetime of the session cookie; the staff token inside it expires on players' clock "
        "(10 minutes), after which the person signs in again"))
    call_timeout_seconds: float = Field(default=5.0, gt=0, description="one call to a service behind a screen")
    page_size: int = Field(default=50, ge=1, le=200, description=(
        "rows per page of a list screen (player search, a player's transactions)"))
