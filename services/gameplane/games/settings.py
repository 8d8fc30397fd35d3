"""Settings of the games service (GP_GAMES_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from gameplane.contracts.games import DEV_PROVIDER_SECRET
from gameplane.kit.settings import ServiceSettings, settings_config

Dialect = Literal["canonical", "aggregator"]


class ProviderSettings(BaseModel):
    """One integrated provider. Secrets come from the environment (a Secret in k8s), never the catalog."""

    dialect: Dialect = "canonical"
    secret: str | None = Field(default=None, min_length=16, description="HMAC-SHA256 key (canonical dialect)")
    public_key_pem: str | None = Field(default=None, description="RSA public key (aggregator dialect)")

    @model_validator(mode="after")
    def _has_key(self) -> ProviderSettings:
        if self.dialect == "canonical" and not self.secret:
            raise ValueError("a canonical provider needs `secret`")
        if self.dialect == "aggregator" and not self.public_key_pem:
            raise ValueError("an aggregator provider needs `public_key_pem`")
        return self


class GamesSettings(ServiceSettings):
    service_name: ClassVar[str] = "games"
    model_config = settings_config("games")

    port: int = 8003
    # Declared before `providers`: its validator reads this value.
    providers_dir: Path = Path("/etc/gameplane/providers")
    providers: dict[str, ProviderSettings] = Field(
        default_factory=lambda: {"rgs": ProviderSettings(dialect="canonical", secret=DEV_PROVIDER_SECRET)},
        description="provider name -> dialect and key, JSON in GP_GAMES_PROVIDERS; or, as the Helm chart "
                    "writes it, a list of {name, baseUrl, secretName} whose keys are files in "
                    "<providers_dir>/<name>/ (the provider's Secret mounted there)")
    clock_skew_seconds: int = Field(default=300, ge=1, description="accepted |provider clock - our clock|")
    session_cache_seconds: float = Field(default=1.0, ge=0,
                                         description="how long an open session looked up in sessions is reused "
                                                     "while games is not hearing sessions.ended events")
    session_trust_seconds: float = Field(default=60.0, ge=0,
                                         description="how long an open session is reused while games hears "
                                                     "sessions.ended events (an end event evicts it at once)")
    catalog_cache_seconds: float = Field(default=5.0, ge=0)
    seed_catalog: bool = Field(default=True, description="insert the bundled catalog entries that are missing")
    wallet_connections: int = Field(default=16, ge=1, description="keep-alive connections to the wallet")
    wallet_timeout_seconds: float = Field(default=1.2, gt=0, description="per attempt at the wallet")
    wallet_attempts: int = Field(default=2, ge=1, description="attempts x timeout stay below the ~3 s after "
                                                              "which providers give up and retry themselves")

    @field_validator("providers", mode="before")
    @classmethod
    def _from_mounted_secrets(cls, value: Any, info: ValidationInfo) -> Any:
        """The chart names providers and mounts each one's Secret (keys `dialect`, `secret`,
        `public_key_pem`) as files; read them here so no key ever sits in an environment variable."""
        if not isinstance(value, list):
            return value
        root = Path(info.data.get("providers_dir") or "/etc/gameplane/providers")
        out: dict[str, dict[str, str]] = {}
        for entry in value:
            name = entry["name"]
            folder = root / name
            keys = {f.name: f.read_text().strip() for f in folder.iterdir() if f.is_file()} \
                if folder.is_dir() else {}
            out[name] = {k: v for k, v in keys.items() if k in ("dialect", "secret", "public_key_pem")}
        return out
