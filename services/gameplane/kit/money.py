"""Money as an integer count of minor units plus an ISO 4217 currency. Never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

# ISO 4217 minor-unit exponents for the currencies the platform accepts.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CHF": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "BRL": 2, "MXN": 2, "INR": 2, "ZAR": 2, "TRY": 2,
    "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0,
    "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}


# The largest amount one operation may carry, in minor units, per currency: a billion units of the
# currency (a hundred billion for those without minor units, whose unit is worth little). Every
# bound stays far below what a bigint balance holds after millions of such operations, so no sum
# the ledger makes can overflow. Integrators read these in docs/api/limits.md (checked by a test).
MAX_AMOUNT_MAJOR_UNITS = 1_000_000_000
MAX_AMOUNT_MAJOR_UNITS_NO_MINOR = 100_000_000_000


def max_amount(currency: str) -> int:
    exp = CURRENCY_EXPONENTS[currency] if currency in CURRENCY_EXPONENTS else exponent(currency)
    return (MAX_AMOUNT_MAJOR_UNITS_NO_MINOR if exp == 0 else MAX_AMOUNT_MAJOR_UNITS) * 10**exp


# The largest bound of any currency: what a schema without the currency at hand can state.
MAX_AMOUNT_MINOR = max(max_amount(c) for c in CURRENCY_EXPONENTS)


class CurrencyError(ValueError):
    pass


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise CurrencyError(f"unsupported currency {currency!r}") from None


def validate_currency(code: str) -> str:
    code = code.upper()
    exponent(code)
    return code


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError("amount_minor must be an int (minor units), never a float")
        exponent(self.currency)

    @classmethod
    def parse(cls, major: str, currency: str) -> Money:
        """'10.50' EUR -> 1050. Refuses more decimals than the currency has."""
        exp = exponent(currency)
        value = Decimal(major)
        scaled = value.scaleb(exp)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{major} has more than {exp} decimals for {currency}")
        return cls(int(scaled), currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor <= other.amount_minor

    def allocate(self, ratios: list[int]) -> list[Money]:
        """Split by integer ratios; remainders go to the first parts so the sum is exact."""
        total = sum(ratios)
        if total <= 0:
            raise ValueError("ratios must sum to a positive number")
        parts = [self.amount_minor * r // total for r in ratios]
        remainder = self.amount_minor - sum(parts)
        for i in range(abs(remainder)):
            parts[i % len(parts)] += 1 if remainder > 0 else -1
        return [Money(p, self.currency) for p in parts]

    def format(self) -> str:
        exp = exponent(self.currency)
        return f"{Decimal(self.amount_minor).scaleb(-exp):.{exp}f} {self.currency}"

    def to_api(self) -> MoneyModel:
        return MoneyModel(amount=self.amount_minor, currency=self.currency)


Currency = Annotated[str, Field(min_length=3, max_length=3, description="ISO 4217 code")]


class MoneyModel(BaseModel):
    """Wire form of money: {"amount": 1050, "currency": "EUR"} — amount in minor units."""

    model_config = ConfigDict(frozen=True)
    amount: StrictInt = Field(description="amount in minor units of the currency (cents for EUR)")
    currency: Currency

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        return validate_currency(v)

    def to_money(self) -> Money:
        return Money(self.amount, self.currency)


def money_json(m: Money) -> dict[str, Any]:
    return {"amount": m.amount_minor, "currency": m.currency}
