"""Wagering arithmetic and the default contribution table (the one place it is written).

A settled stake counts `stake * pct // 100` (rounded down: a part of a minor unit never counts)
where pct is the grant's offer's contribution for the game's category, else this table's, else 0
(an unknown category never counts: conservative). The requirement is `multiplier * base`, the base
being the bonus, or the bonus plus the matched deposit.
"""

from __future__ import annotations

from collections.abc import Mapping

# % of a settled stake that counts toward wagering, by the game's category at games
DEFAULT_CONTRIBUTIONS: dict[str, int] = {
    "slots": 100,
    "instant": 50,
    "table": 20,
    "live": 10,
    "poker": 0,
}


def contributions(offer: Mapping[str, int] | None) -> dict[str, int]:
    """The table a grant uses: the offer's overrides on top of the defaults."""
    return {**DEFAULT_CONTRIBUTIONS, **(offer or {})}


def contribution(stake: int, category: str | None, table: Mapping[str, int]) -> int:
    if stake <= 0 or category is None:
        return 0
    return stake * int(table.get(category, 0)) // 100


def requirement(multiplier: int, bonus: int, deposit: int, base: str) -> int:
    return multiplier * (bonus + deposit if base == "bonus_deposit" else bonus)
