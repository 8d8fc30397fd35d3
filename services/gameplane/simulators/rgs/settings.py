"""Settings of the RGS simulator (GP_RGS_*). It has no database and no NATS: it is an outside party."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from gameplane.kit.settings import ServiceSettings, settings_config


class RgsSettings(ServiceSettings):
    service_name: ClassVar[str] = "rgs"
    model_config = settings_config("rgs")

    port: int = 8100
    nats_url: str | None = None
    platform_url: str | None = Field(
        default=None, description="where the platform's /providers API is; default: the gateway, else games")
    provider: str = Field(default="rgs", description="our provider name on the platform")
    provider_secret: str | None = Field(default=None, min_length=16, description="our HMAC key on the platform; "
                                        "else the `secret` of our entry in `providers` (the chart's form)")
    providers_dir: Path = Path("/etc/gameplane/providers")
    providers: list[dict[str, Any]] = Field(default_factory=list, description="as the Helm chart writes it: "
                                            "[{name, baseUrl, secretName}], Secret mounted in <providers_dir>/<name>/")
    request_timeout_seconds: float = Field(default=3.0, gt=0, description="give up on one attempt after this")
    attempts: int = Field(default=4, ge=1, description="tries of one call (same transaction id) before giving up")
    retry_backoff_seconds: float = Field(default=0.2, ge=0)
    seed: int | None = Field(default=None, description="fixed RNG seed for reproducible play (per session token)")
    max_spins_per_call: int = Field(default=1000, ge=1)
    allowed_parents: list[str] = Field(
        default_factory=list, description="origins (scheme://host:port) that may frame the play page and receive "
        "its round messages: the player site; `gameplane up` sets the web's. Empty: /play is never framed")

    def secret(self) -> str:
        """The provider key, or a clear refusal: a studio without its key cannot sign anything."""
        if self.provider_secret:
            return self.provider_secret
        mounted = self.providers_dir / self.provider / "secret"
        if any(p.get("name") == self.provider for p in self.providers) and mounted.is_file():
            return mounted.read_text().strip()
        raise RuntimeError(f"the RGS simulator has no key for provider {self.provider!r}: set GP_RGS_PROVIDER_SECRET "
                           f"(`gameplane up` does), or list it in GP_RGS_PROVIDERS with its Secret mounted "
                           f"at {mounted.parent}")

    def platform(self) -> str:
        if self.platform_url:
            return self.platform_url.rstrip("/")
        for name in ("gateway", "games"):
            try:
                return self.endpoint(name)
            except LookupError:
                continue
        raise LookupError("no platform URL: set GP_RGS_PLATFORM_URL or an endpoint for gateway/games")
