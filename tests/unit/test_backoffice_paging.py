"""The audit log's merged pages (gameplane.backoffice.paging): walked page by page over services
that page by id, every record is shown exactly once and each service's records in its own order,
also when one service's clock runs behind."""

from __future__ import annotations

from typing import Any

import pytest

from gameplane.backoffice import paging

# Hand-written: each service's records newest first by id, as its audit API lists them; times as
# minutes past the hour. wallet's record 7 was written by a replica whose clock ran 5 minutes behind.
LOGS: dict[str, list[dict[str, Any]]] = {
    "players": [{"id": 5, "at": 50}, {"id": 4, "at": 40}, {"id": 3, "at": 30}, {"id": 2, "at": 20},
                {"id": 1, "at": 10}],
    "wallet": [{"id": 9, "at": 45}, {"id": 8, "at": 44}, {"id": 7, "at": 38}, {"id": 6, "at": 43}],
    "bonus": [{"id": 2, "at": 5}, {"id": 1, "at": 1}],
}


def fetch(name: str, cursor: str | None, limit: int) -> paging.Fetched:
    """One service's audit API: records with an id below the cursor, `limit` of them."""
    after = [r for r in LOGS[name] if cursor is None or r["id"] < int(cursor)]
    return paging.Fetched(after[:limit], more=len(after) > limit)


def newer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["at"] > b["at"])


def walk(size: int, down: set[str] | None = None) -> list[list[tuple[str, int]]]:
    pages, cursors = [], {}
    for _ in range(20):  # a pager that never ends fails here instead of hanging
        fetched = {n: (paging.Fetched([], False) if cursors.get(n) == paging.END else fetch(n, cursors.get(n), size))
                   for n in LOGS if n not in (down or set())}
        shown, following = paging.merge(fetched, size, newer, cursors)
        pages.append([(n, r["id"]) for n, r in shown])
        if following is None:
            return pages
        cursors = paging.parse(paging.render(following), list(LOGS))  # through the address and back
        assert cursors == following
    raise AssertionError(f"no last page after 20: {pages}")


@pytest.mark.parametrize("size", [1, 2, 3, 5, 50])
def test_every_record_is_shown_once_and_each_service_in_its_own_order(size: int) -> None:
    pages = walk(size)
    shown = [rec for page in pages for rec in page]
    assert sorted(shown) == sorted((n, r["id"]) for n, rs in LOGS.items() for r in rs)  # each once
    assert all(len(p) == size for p in pages[:-1]) and 0 < len(pages[-1]) <= size
    for name, records in LOGS.items():
        assert [i for n, i in shown if n == name] == [r["id"] for r in records]


def test_pages_of_two_interleave_the_services_by_time() -> None:
    # wallet's 7 comes right after its 8, as wallet lists them, though its clock says 38 past
    assert walk(2) == [[("players", 5), ("wallet", 9)], [("wallet", 8), ("players", 4)],
                       [("wallet", 7), ("wallet", 6)], [("players", 3), ("players", 2)],
                       [("players", 1), ("bonus", 2)], [("bonus", 1)]]


def test_the_skewed_clock_would_make_a_time_sorted_merge_skip_a_record() -> None:
    # The control: the data above is one where "sort the union by time, continue each service after
    # the oldest record shown" loses wallet's record 6 at a page size of 2.
    union = sorted(((n, r) for n, rs in LOGS.items() for r in rs), key=lambda x: x[1]["at"], reverse=True)
    first_two_pages = union[:4]  # players 5, wallet 9, wallet 8, wallet 6 ...
    continue_wallet_after = min(r["id"] for n, r in first_two_pages if n == "wallet")
    never_shown = [r["id"] for r in LOGS["wallet"] if r["id"] > continue_wallet_after
                   and ("wallet", r) not in first_two_pages]
    assert never_shown == [7]


def test_a_service_that_does_not_answer_keeps_its_place_for_the_next_page() -> None:
    cursors = {"players": "4", "wallet": "8"}
    fetched = {"players": fetch("players", "4", 2)}  # wallet is down for this page
    shown, following = paging.merge(fetched, 2, newer, cursors)
    assert [(n, r["id"]) for n, r in shown] == [("players", 3), ("players", 2)]
    assert following == {"players": "2", "wallet": "8"}


@pytest.mark.parametrize("cursor", ["players:4,players:3", "nobody:3", "players:-1", "players:0", "players",
                                    "players:4;wallet:2", "players:99999999999999999999", "players:4,"])
def test_an_edited_cursor_is_void_and_shows_the_newest_page(cursor: str) -> None:
    assert paging.parse(cursor, list(LOGS)) == {}


def test_a_cursor_names_only_the_services_asked_for() -> None:
    assert paging.parse("players:4,wallet:end", ["players", "wallet"]) == {"players": "4", "wallet": "end"}
    assert paging.parse("players:4,wallet:end", ["players"]) == {}
