"""Settings of the RGS simulator (GP_RGS_*). It has no database and no NATS: it is an outside party."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameplane.contracts.games import DEV_PROVIDER_SECRET
from gameplane.kit.settings import ServiceSettings, settings_config


class RgsSettings(ServiceSettings):
    service_name: ClassVar[str] = "rgs"
    model_config = settings_config("rgs")

    port: int = 8100
    nats_url: str | None = None
    platform_url: str | None = Field(
        default=None, description="where the platform's /providers API is; default: the gateway, else games")
    provider: str = Field(default="rgs", description="our provider name on the platform")
    provider_secret: str = Field(default=DEV_PROVIDER_SECRET, min_length=16)
    request_timeout_seconds: float = Field(default=3.0, gt=0, description="give up on one attempt after this")
    attempts: int = Field(default=4, ge=1, description="tries of one call (same transaction id) before giving up")
    retry_backoff_seconds: float = Field(default=0.2, ge=0)
    seed: int | None = Field(default=None, description="fixed RNG seed for reproducible play (per session token)")
    max_spins_per_call: int = Field(default=1000, ge=1)

    def platform(self) -> str:
        if self.platform_url:
            return self.platform_url.rstrip("/")
        for name in ("gateway", "games"):
            try:
                return self.endpoint(name)
            except LookupError:
                continue
        raise LookupError("no platform URL: set GP_RGS_PLATFORM_URL or an endpoint for gateway/games")
