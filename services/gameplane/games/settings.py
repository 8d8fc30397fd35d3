"""Settings of the games service (GP_GAMES_*)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from gameplane.contracts.games import KNOWN_DEV_SECRETS
from gameplane.kit.settings import ServiceSettings, settings_config

Dialect = Literal["canonical", "aggregator"]
API_URL_PATTERN = r"^https?://[^/@\s]+(/\S*)?$"  # the CRD's rule for providers[].baseUrl


class ProviderSettings(BaseModel):
    """One integrated provider. Secrets come from the environment (a Secret in k8s), never the catalog."""

    dialect: Dialect = "canonical"
    secret: str | None = Field(default=None, min_length=16, description="HMAC-SHA256 key (canonical dialect)")
    public_key_pem: str | None = Field(default=None, description="RSA public key (aggregator dialect)")
    api_url: str | None = Field(default=None, pattern=API_URL_PATTERN, description=(
        "base URL of the provider's own API (free-spin awards go to <api_url>/free-spins, signed with `secret`); "
        "none: the provider takes no awards"))

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
    dev_mode: bool = Field(default=False, description="a development run (`gameplane up`, tests, benches): "
                           "accept the published development provider secret. The charts never set it.")
    # Declared before `providers`: its validator reads this value.
    providers_dir: Path = Path("/etc/gameplane/providers")
    providers: dict[str, ProviderSettings] = Field(
        default_factory=dict,
        description="provider name -> dialect and key, JSON in GP_GAMES_PROVIDERS; or, as the Helm chart "
                    "writes it, a list of {name, baseUrl, secretName} whose keys are files in "
                    "<providers_dir>/<name>/ (the provider's Secret mounted there; baseUrl is the api_url "
                    "unless the Secret has an `api_url` key). None by default: "
                    "no provider, no provider call moves money")
    clock_skew_seconds: int = Field(default=300, ge=1, le=3600,
                                    description="accepted |provider clock - our clock| of the signed timestamp")
    replay_prune_interval_seconds: float = Field(default=60.0, gt=0,
                                                 description="how often request-id records older than twice the "
                                                             "clock-skew window are deleted")
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
    provider_timeout_seconds: float = Field(default=5.0, gt=0, description="per call to a provider's own API "
                                            "(a free-spin award)")
    wallet_attempts: int = Field(default=2, ge=1, description="attempts x timeout stay below the ~3 s after "
                                                              "which providers give up and retry themselves")

    @model_validator(mode="after")
    def _no_published_secret(self) -> GamesSettings:
        """A deployment must never run with a key printed in this repository: anyone could sign bets."""
        if not self.dev_mode:
            for name, cfg in self.providers.items():
                if cfg.secret in KNOWN_DEV_SECRETS:
                    raise ValueError(f"provider {name!r} is configured with the published development secret; "
                                     "give it its own secret (`openssl rand -hex 32`) in its Secret, or set "
                                     "GP_GAMES_DEV_MODE=true on a development machine")
        return self

    @property
    def replay_retention_seconds(self) -> int:
        """A signed request is accepted up to the window after its timestamp, and its timestamp may be
        up to the window ahead of ours: after twice the window nobody can replay it."""
        return 2 * self.clock_skew_seconds

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
            if not ({"secret", "public_key_pem"} & keys.keys()):
                raise ValueError(f"provider {name!r}: no `secret` or `public_key_pem` in {folder} (its Secret "
                                 f"{entry.get('secretName', '?')!r} missing or without keys)")
            cfg = {k: v for k, v in keys.items() if k in ("dialect", "secret", "public_key_pem", "api_url")}
            # The entry's baseUrl (the CRD's providers[].baseUrl), unless the Secret names one itself.
            if "api_url" not in cfg and re.match(API_URL_PATTERN, str(entry.get("baseUrl") or "")):
                cfg["api_url"] = entry["baseUrl"]
            out[name] = cfg
        return out
