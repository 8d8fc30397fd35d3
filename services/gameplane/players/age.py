"""Age rules: players must be adults under the jurisdiction's minimum age before anything else."""

from __future__ import annotations

from datetime import date

from gameplane.players.errors import InvalidDateOfBirth, Underage

MAX_PLAUSIBLE_AGE = 120


def age_on(date_of_birth: date, today: date) -> int:
    """Completed years on `today` (someone born on 29 February turns a year older on 1 March)."""
    years = today.year - date_of_birth.year
    if (today.month, today.day) < (date_of_birth.month, date_of_birth.day):
        years -= 1
    return years


def check_adult(date_of_birth: date, today: date, minimum_age: int) -> int:
    if date_of_birth > today:
        raise InvalidDateOfBirth("date of birth is in the future")
    age = age_on(date_of_birth, today)
    if age > MAX_PLAUSIBLE_AGE:
        raise InvalidDateOfBirth(f"an age of {age} years is not plausible")
    if age < minimum_age:
        raise Underage(minimum_age)
    return age
