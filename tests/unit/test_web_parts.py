"""The player site's pure parts: amounts as people type and read them, the session cookie's
contents, refusals from the platform turned into words, the lobby's filters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplane.web import money
from gameplane.web.cookie import REFRESH_MARGIN_SECONDS, PlayerSession
from gameplane.web.gateway import problem_of
from gameplane.web.site import filter_games, net_position, play_block, register_error


@pytest.mark.parametrize(("typed", "currency", "minor"), [
    ("25", "EUR", 2500), ("25.5", "EUR", 2550), ("1,000.01", "GBP", 100001), ("€10", "EUR", 1000),
    ("0.01", "EUR", 1), (" 7 ", "USD", 700), ("500", "JPY", 500),
])
def test_typed_amounts_become_exact_minor_units(typed: str, currency: str, minor: int) -> None:
    assert money.parse(typed, currency) == minor


@pytest.mark.parametrize(("typed", "words"), [
    ("0", "more than zero"), ("-5", "more than zero"), ("1.005", "at most 2 decimals"), ("ten", "not an amount"),
    ("NaN", "not an amount"), ("Infinity", "not an amount"), ("", "not an amount"), ("1e30", "too large"),
])
def test_amounts_that_are_not_money_are_refused_in_words(typed: str, words: str) -> None:
    with pytest.raises(money.BadAmount, match=words):
        money.parse(typed, "EUR")


def test_amounts_are_shown_in_the_currencys_units() -> None:
    assert money.show(123456, "EUR") == "€1,234.56"
    assert money.show(-50, "GBP") == "\u2212£0.50"
    assert money.show(500, "JPY") == "500 JPY"
    assert money.show(0, "SEK") == "0.00 SEK"


@given(st.integers(min_value=1, max_value=10**12))
def test_what_is_shown_parses_back_to_the_same_amount(minor: int) -> None:
    assert money.parse(money.show(minor, "EUR"), "EUR") == minor


def test_the_session_cookie_round_trips_and_refreshes_before_expiry() -> None:
    login = {"access_token": "a.b.c", "refresh_token": "r" * 40, "expires_in": 900, "player_id": "p-1",
             "play": False}
    s = PlayerSession.from_login(login, now=1000.0, jurisdiction="mga", currency="EUR")
    back = PlayerSession.decode(s.encode())
    assert back == s and back.play is False and back.expires_at == 1900.0
    assert (back.jurisdiction, back.currency) == ("mga", "EUR")
    assert not s.due_for_refresh(1900.0 - REFRESH_MARGIN_SECONDS - 1)
    assert s.due_for_refresh(1900.0 - REFRESH_MARGIN_SECONDS)


@pytest.mark.parametrize("value", [None, "", "not-base64!", "bnVsbA", "W10", "WzEsMiwzLDQsNV0", "x" * 5000])
def test_a_cookie_this_site_did_not_write_is_no_session(value: str | None) -> None:
    assert PlayerSession.decode(value) is None


def test_refusals_keep_their_type_words_and_extensions() -> None:
    e = problem_of(403, {"type": "https://gameplane.io/problems/deposit-not-allowed", "title": "Deposit not allowed",
                         "status": 403, "detail": "the deposit limit leaves 0", "reason": "deposit-limit",
                         "remaining": 0})
    assert (e.slug, e.extensions) == ("deposit-not-allowed", {"reason": "deposit-limit", "remaining": 0})
    assert e.words == "Deposit not allowed: the deposit limit leaves 0"
    invalid = problem_of(422, {"type": "https://gameplane.io/problems/validation-error", "title": "Invalid request",
                               "status": 422, "errors": [{"loc": ["body", "country"], "msg": "not a country"}]})
    assert invalid.words == "Invalid request: country: not a country"
    assert problem_of(502, "<html>").slug == "http-502"


def test_registration_refusals_say_what_to_do() -> None:
    underage = problem_of(422, {"type": "https://gameplane.io/problems/underage", "title": "Player is under the "
                                "minimum age", "status": 422, "minimum_age": 21})
    assert register_error(underage) == "You must be at least 21 years old to play here."
    taken = problem_of(409, {"type": "https://gameplane.io/problems/email-taken", "title": "Email taken",
                             "status": 409})
    assert "Sign in instead" in register_error(taken)


def test_play_is_blocked_only_while_a_break_lasts() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert play_block({"self_excluded_until": None, "timeout_until": None}, now) is None
    assert play_block({"self_excluded_until": None, "timeout_until": "2026-12-01T12:00:00+00:00"}, now) is None
    words = play_block({"self_excluded_until": "2027-06-02T12:00:00+00:00", "timeout_until": None}, now)
    assert words is not None and words.startswith("You are self-excluded until 02 June 2027")


GAMES = [{"game_id": "fruit-fives", "title": "Fruit Fives", "provider": "rgs", "category": "slots"},
         {"game_id": "lucky-dice", "title": "Lucky Dice", "provider": "acme", "category": "table"},
         {"game_id": "gold-rush", "title": "Gold Rush", "provider": "acme", "category": "slots"}]


def test_the_lobby_filters_by_search_provider_and_category() -> None:
    ids = lambda gs: [g["game_id"] for g in gs]  # noqa: E731
    assert ids(filter_games(GAMES, "", "", "")) == ["fruit-fives", "lucky-dice", "gold-rush"]
    assert ids(filter_games(GAMES, "fRuIt", "", "")) == ["fruit-fives"]
    assert ids(filter_games(GAMES, "", "acme", "")) == ["lucky-dice", "gold-rush"]
    assert ids(filter_games(GAMES, "", "acme", "slots")) == ["gold-rush"]
    assert ids(filter_games(GAMES, "dice", "rgs", "")) == []


def test_the_net_position_counts_this_sessions_stakes_and_wins_only() -> None:
    from datetime import UTC, datetime

    start = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    tx = [{"kind": "deposit", "amount": 10_000, "created_at": "2026-12-02T12:05:00+00:00"},
          {"kind": "bet", "amount": 100, "created_at": "2026-12-02T11:59:59+00:00"},  # an earlier session
          {"kind": "bet", "amount": 100, "created_at": "2026-12-02T12:00:00+00:00"},
          {"kind": "win", "amount": 250, "created_at": "2026-12-02T12:00:01+00:00"},
          {"kind": "bet", "amount": 100, "created_at": "2026-12-02T12:01:00+00:00"},
          {"kind": "rollback", "amount": 100, "created_at": "2026-12-02T12:01:01+00:00"},
          {"kind": "bet", "amount": 300, "created_at": "2026-12-02T12:02:00+00:00"}]
    assert net_position(tx, start) == -100 + 250 - 100 + 100 - 300
    assert net_position([], start) == 0


def test_the_gateway_routes_no_path_to_the_site_in_front_of_it() -> None:
    from gameplane.gateway.routes import RouteTable
    from gameplane.gateway.settings import PLATFORM_SERVICES

    assert "web" not in PLATFORM_SERVICES and "players" in PLATFORM_SERVICES  # the latter: negative control
    assert RouteTable(PLATFORM_SERVICES, known=PLATFORM_SERVICES).resolve("GET", "/v1/web/lobby") is None
