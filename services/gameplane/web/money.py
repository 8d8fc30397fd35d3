"""Amounts as people read and type them, from and to integer minor units (exact: Decimal, never
float)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# Minor units per major unit of the currencies the platform supports; others show two decimals.
EXPONENTS: dict[str, int] = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}
SYMBOLS: dict[str, str] = {"EUR": "€", "GBP": "£", "USD": "$"}


def exponent(currency: str) -> int:
    return EXPONENTS.get(currency.upper(), 2)


def show(minor: int, currency: str) -> str:
    """1234, EUR -> "€12.34"; -50, GBP -> "−£0.50" (a real minus sign)."""
    e = exponent(currency)
    sign = "\u2212" if minor < 0 else ""
    major = Decimal(abs(minor)).scaleb(-e)
    text = f"{major:,.{e}f}"
    symbol = SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


class BadAmount(ValueError):
    pass


def parse(text: str, currency: str) -> int:
    """What a person typed ("25", "25.5", "1,000.00", "€10") as minor units; BadAmount for
    anything else, for more decimals than the currency has, or for zero or less."""
    cleaned = text.strip().replace(",", "").replace(" ", "")
    for symbol in SYMBOLS.values():
        cleaned = cleaned.removeprefix(symbol)
    e = exponent(currency)
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise BadAmount(f"“{text}” is not an amount") from None
    if not value.is_finite():
        raise BadAmount(f"“{text}” is not an amount")
    minor = value.scaleb(e)
    if minor != minor.to_integral_value():
        raise BadAmount(f"{currency.upper()} amounts have at most {e} decimals")
    if minor <= 0:
        raise BadAmount("the amount must be more than zero")
    if minor > 10**15:
        raise BadAmount("the amount is too large")
    return int(minor)
