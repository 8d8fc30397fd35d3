"""Settings of the players service (GP_PLAYERS_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameplane.contracts.jurisdiction import JurisdictionName, JurisdictionProfile, profile
from gameplane.kit.settings import ServiceSettings, settings_config


class PlayersSettings(ServiceSettings):
    service_name: ClassVar[str] = "players"
    model_config = settings_config("players")

    port: int = 8001
    jurisdiction: JurisdictionName = Field(default="ukgc", description="responsible-gaming rule profile")
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600)
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    login_lock_seconds: int = Field(default=900, ge=1)
    staff_token_ttl_seconds: int = Field(default=600, ge=60, le=3600,
                                         description="life of a staff (back-office) token; no refresh: log in again")
    staff_totp_issuer: str = Field(default="gameplane", description="issuer shown in staff authenticator apps")
    # argon2id costs; the defaults follow argon2-cffi's, tests lower them to keep the suite quick.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    argon2_parallelism: int = Field(default=2, ge=1)
    argon2_concurrency: int = Field(default=2, ge=1, description="password hashes (sign-ups, logins) computed at "
                                    "once; each holds argon2_memory_kib, so this bounds what a burst can take: "
                                    "two at the default 64 MiB fit the small profile's 256 MiB limit")
    sweep_interval_seconds: float = Field(default=60.0, gt=0,
                                          description="how often due pending limit changes are applied")

    @property
    def profile(self) -> JurisdictionProfile:
        return profile(self.jurisdiction)
