"""The affiliates service's API models, its problems and the events it publishes (`affiliates.*`).

The affiliates service owns the rest of this module; `PlayerAttributed` is the seam analytics
reads (a player's affiliate, for KPIs filtered by affiliate).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from gameplane.kit.events import Event


class PlayerAttributed(Event):
    """A registration was attributed to the last click on one of an affiliate's links (30 days)."""

    event_type = "affiliates.player_attributed"
    player_id: uuid.UUID
    affiliate_id: uuid.UUID
    click_id: str
    link_id: uuid.UUID
    sub_ids: list[str] = Field(default_factory=list, max_length=5)
    country: str
    currency: str
    attributed_at: datetime
