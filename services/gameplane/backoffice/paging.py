"""Pages of a list merged from several services, each paged by its own cursor (the audit log).

Each service lists its records newest first by id, and hands out the id of the last record it gave
as the cursor of its next page. A merged page takes records from the *head* of each service's own
order, choosing among the heads by time: so every page consumes a prefix of every service's list,
and one cursor per service (the last id shown from it) says exactly where each continues. Sorting
the union by time instead would show a record of a replica whose clock runs behind after records
of that service the next page skips. Pure: the screens do the calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

END = "end"  # a service with nothing left to show
_PART = re.compile(r"^([a-z]+):([1-9][0-9]{0,18}|end)$")


@dataclass(frozen=True)
class Fetched:
    """What one service gave for a page: its records from its cursor, and whether more follow."""

    records: Sequence[Mapping[str, Any]]
    more: bool


def parse(cursor: str | None, services: Sequence[str]) -> dict[str, str]:
    """`players:812,wallet:end` -> {service: id or END}; an unknown, repeated or malformed part makes
    the whole cursor void ({}: the newest page) rather than a page that skips or repeats records."""
    if not cursor:
        return {}
    out: dict[str, str] = {}
    for part in cursor.split(","):
        m = _PART.match(part)
        if m is None or m.group(1) not in services or m.group(1) in out:
            return {}
        out[m.group(1)] = m.group(2)
    return out


def render(cursors: Mapping[str, str]) -> str:
    return ",".join(f"{name}:{value}" for name, value in sorted(cursors.items()))


def merge(fetched: Mapping[str, Fetched], size: int, newer: Callable[[Mapping[str, Any], Mapping[str, Any]], bool],
          cursors: Mapping[str, str]) -> tuple[list[tuple[str, Mapping[str, Any]]], dict[str, str] | None]:
    """Up to `size` records (service, record), newest first as `newer` decides among the services'
    heads, and the cursors of the next page (None when nothing is left). A service that did not
    answer (absent from `fetched`) keeps its cursor, so the next page still shows its records."""
    heads = {name: 0 for name in fetched}
    page: list[tuple[str, Mapping[str, Any]]] = []
    while len(page) < size:
        ready = [n for n in fetched if heads[n] < len(fetched[n].records)]
        if not ready:
            break
        best = ready[0]
        for n in ready[1:]:
            if newer(fetched[n].records[heads[n]], fetched[best].records[heads[best]]):
                best = n
        page.append((best, fetched[best].records[heads[best]]))
        heads[best] += 1
    following = dict(cursors)
    for name, got in fetched.items():
        taken = heads[name]
        if taken == len(got.records) and not got.more:
            following[name] = END
        elif taken:
            following[name] = str(got.records[taken - 1]["id"])
    # a service without a cursor yet (nothing of it shown) still has everything to show
    left = any(following.get(name) != END for name in {*fetched, *following})
    return page, (following if left else None)
