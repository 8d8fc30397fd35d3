"""Attribution of a registration to the click whose id it carried (last click, 30 days).

The click id a player brought through registration identifies the click; the registration is
attributed to it when the click is known, not flagged, on a link of an active affiliate, and at
most 30 days (ATTRIBUTION_DAYS, inclusive) older than the registration. Otherwise the player is
recorded as unattributed, with the reason. Either way the player gets a pseudonymous ref, the only
name affiliates ever see.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from gameplane.contracts.affiliates import ATTRIBUTION_DAYS, Unattributed

WINDOW = timedelta(days=ATTRIBUTION_DAYS)


def why_not(click_id: str | None, click: Mapping[str, Any] | None, registered_at: datetime) -> Unattributed | None:
    """None when the registration is attributed to `click`, else the reason it is not."""
    if not click_id:
        return "no-click"
    if click is None:
        return "unknown-click"
    if click["flag"] is not None:
        return "flagged-click"
    if registered_at - click["clicked_at"] > WINDOW:
        return "expired-click"
    if not click["active"]:
        return "affiliate-inactive"
    return None


def new_player_ref() -> str:
    return "p_" + secrets.token_hex(10)
