import pytest
from pydantic import ValidationError

from gameplane.kit.money import CurrencyError, Money, MoneyModel


def test_exponents_follow_iso_4217():
    assert Money.parse("10.50", "EUR").amount_minor == 1050
    assert Money.parse("1050", "JPY").amount_minor == 1050
    assert Money.parse("1.234", "KWD").amount_minor == 1234


def test_more_decimals_than_the_currency_has_is_refused():
    with pytest.raises(ValueError):
        Money.parse("10.505", "EUR")
    with pytest.raises(ValueError):
        Money.parse("1.5", "JPY")


def test_floats_are_never_money():
    with pytest.raises(TypeError):
        Money(10.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        MoneyModel(amount=10.5, currency="EUR")  # type: ignore[arg-type]


def test_unknown_currency_and_mixed_currencies_are_refused():
    with pytest.raises(CurrencyError):
        Money(1, "XXX")
    with pytest.raises(CurrencyError):
        Money(1, "EUR") + Money(1, "USD")


def test_allocate_is_exact():
    parts = Money(1001, "EUR").allocate([1, 1, 1])
    assert [p.amount_minor for p in parts] == [334, 334, 333]
    assert sum(p.amount_minor for p in parts) == 1001
    assert sum(p.amount_minor for p in Money(-7, "EUR").allocate([3, 4])) == -7


def test_format_uses_the_exponent():
    assert Money(1050, "EUR").format() == "10.50 EUR"
    assert Money(5, "JPY").format() == "5 JPY"
    assert Money(1, "KWD").format() == "0.001 KWD"
