"""How figures read on a page: money from integer minor units without floats, shares as
percentages. Pure; the templates use them as filters."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

# ISO 4217 exponents that are not 2 (the platform's currencies are otherwise two-decimal).
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}


def money(minor: int | None, currency: str = "") -> str:
    """`-1234, "EUR"` -> "EUR -12.34": the integer split at the currency's exponent, grouped by thousands."""
    if minor is None:
        return "—"
    exp = _EXPONENTS.get(currency, 2)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(int(minor)), 10 ** exp)
    text = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    return f"{currency} {sign}{text}".strip()


def percent(share: float | None, digits: int = 2) -> str:
    return "—" if share is None else f"{share * 100:.{digits}f} %"


def when(at: datetime | str | None) -> str:
    if at is None:
        return "—"
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def change(value: Any) -> str:
    """An audit record's before/after as compact JSON (the template escapes it)."""
    return "—" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
