"""Settings of the sessions service (GP_SESSIONS_*)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameplane.contracts.jurisdiction import JurisdictionName
from gameplane.kit.settings import ServiceSettings, settings_config


class SessionsSettings(ServiceSettings):
    service_name: ClassVar[str] = "sessions"
    model_config = settings_config("sessions")

    port: int = 8004
    jurisdiction: JurisdictionName = Field(default="ukgc", description="where the catalog must enable a game")
    session_ttl_seconds: int = Field(default=4 * 3600, ge=10, description="longest life of a game session")
    min_ttl_seconds: int = Field(default=2, ge=1, description="shortest life a launch may ask for (test kits)")
    session_break_minutes: int = Field(
        default=30, ge=1, description="a pause at least this long starts a new play session for session limits")
    sweep_interval_seconds: float = Field(default=2.0, gt=0,
                                          description="how often expiries and due reality checks are processed")
    launch_path: str = Field(default="/launch", description="path of the provider's launch page")
    game_urls: dict[str, str] = Field(default_factory=dict, description=(
        "each provider's browser-facing address (provider -> URL), where a session's launch_url points; "
        "a provider not listed falls back to its service endpoint (right for `gameplane up`, where "
        "players' browsers reach the simulator at that address)"))
