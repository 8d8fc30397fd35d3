"""Request and response bodies of the sessions API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gameplane.contracts.sessions import SessionView


class LaunchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    game_id: str = Field(min_length=1, max_length=100)
    currency: str | None = Field(default=None, min_length=3, max_length=3,
                                 description="defaults to the player's account currency")
    ttl_seconds: int | None = Field(default=None, gt=0, le=86_400,
                                    description="shorter session life (test kits); at most a day")


class Launch(SessionView):
    launch_url: str | None = Field(description="the provider's launch page for this session")
    reality_check_minutes: int | None = None
