"""The gateway's route table: targets, public vs player routes, play routes, what is never routed."""

from __future__ import annotations

import pytest

from gameplane.gateway.routes import Access, BadPath, Blocked, NotRunning, RouteTable, client_ip

SERVICES = ["players", "wallet", "games", "sessions", "payments"]


@pytest.fixture
def table() -> RouteTable:
    return RouteTable(SERVICES)


@pytest.mark.parametrize(("method", "path", "target"), [
    ("GET", "/v1/players/me", "players"),
    ("GET", "/v1/players", "players"),
    ("POST", "/v1/wallet/deposits", "wallet"),
    ("GET", "/v1/games/catalog/starburst", "games"),
    ("POST", "/providers/acme/bet", "games"),
    ("POST", "/webhooks/psp/payment", "payments"),
])
def test_routes_by_prefix(table: RouteTable, method: str, path: str, target: str) -> None:
    route = table.resolve(method, path)
    assert route is not None and route.target == target


@pytest.mark.parametrize("path", ["/v1/bonus/offers", "/v1/rgs/spin", "/v1", "/v2/players/me", "/livez",
                                  "/openapi.json", "/", "/v1/playersx/me"])
def test_unknown_or_own_paths_are_not_proxied(table: RouteTable, path: str) -> None:
    assert table.resolve("GET", path) is None


def test_fixed_prefix_needs_its_service() -> None:
    assert RouteTable(["players"]).resolve("POST", "/webhooks/psp/x") is None


@pytest.mark.parametrize("path", ["/internal/players/x", "/internal", "/internal/wallet/accounts/1"])
def test_internal_is_blocked(table: RouteTable, path: str) -> None:
    with pytest.raises(Blocked):
        table.resolve("GET", path)


@pytest.mark.parametrize("path", ["/v1/players/../internal/players/x", "/v1/players/./me", "/v1/players/me/.."])
def test_dot_segments_are_refused(table: RouteTable, path: str) -> None:
    with pytest.raises(BadPath):
        table.resolve("GET", path)


def test_dots_inside_a_segment_are_fine(table: RouteTable) -> None:
    route = table.resolve("GET", "/v1/games/catalog/book.of.ra")
    assert route is not None and route.target == "games"


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/players/register"),
    ("POST", "/v1/players/login"),
    ("POST", "/v1/players/token/refresh"),
    ("POST", "/v1/players/logout"),
    ("GET", "/v1/games"),
    ("GET", "/v1/games/catalog"),
    ("POST", "/providers/acme/debit"),
    ("GET", "/webhooks/psp/status"),
])
def test_public_routes(table: RouteTable, method: str, path: str) -> None:
    route = table.resolve(method, path)
    assert route is not None and route.access is Access.PUBLIC and not route.play


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/players/register"),  # the method is part of the rule
    ("POST", "/v1/players/registered"),  # an exact rule is not a prefix
    ("POST", "/v1/players/login/other"),
    ("POST", "/v1/games/favourites"),  # only reading the catalog is public
    ("GET", "/v1/players/me"),
    ("GET", "/v1/wallet/balance"),
])
def test_player_routes(table: RouteTable, method: str, path: str) -> None:
    route = table.resolve(method, path)
    assert route is not None and route.access is Access.PLAYER


def test_play_routes(table: RouteTable) -> None:
    launch = table.resolve("POST", "/v1/sessions")
    nested = table.resolve("POST", "/v1/sessions/abc/end")
    read = table.resolve("GET", "/v1/sessions/abc")
    assert launch is not None and launch.play
    assert nested is not None and nested.play
    assert read is not None and not read.play


def test_bonus_routes_are_player_routes_and_taking_an_offer_is_play() -> None:
    table = RouteTable([*SERVICES, "bonus"])
    opt_in = table.resolve("POST", "/v1/bonus/offers/0b9c/opt-in")
    grants = table.resolve("GET", "/v1/bonus/grants")
    forfeit = table.resolve("POST", "/v1/bonus/grants/0b9c/forfeit")
    assert opt_in is not None and (opt_in.target, opt_in.access, opt_in.play) == ("bonus", Access.PLAYER, True)
    assert grants is not None and (grants.target, grants.access, grants.play) == ("bonus", Access.PLAYER, False)
    # giving a bonus up stays open to a self-excluded player, as withdrawals do
    assert forfeit is not None and not forfeit.play
    with pytest.raises(Blocked):
        table.resolve("POST", "/internal/bonus/grants")


def test_labels_are_low_cardinality(table: RouteTable) -> None:
    a = table.resolve("GET", "/v1/players/123")
    b = table.resolve("POST", "/providers/acme/x/y")
    assert a is not None and a.label == "/v1/players"
    assert b is not None and b.label == "/providers"


@pytest.mark.parametrize(("peer", "xff", "hops", "expected"), [
    ("10.0.0.1", None, 0, "10.0.0.1"),
    ("10.0.0.1", "6.6.6.6", 0, "10.0.0.1"),  # nobody trusted: a client cannot choose its address
    ("10.0.0.1", "6.6.6.6, 1.2.3.4", 1, "1.2.3.4"),  # the ingress appended what it saw
    ("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.9", 2, "1.2.3.4"),
    ("10.0.0.1", "1.2.3.4", 3, "1.2.3.4"),
    (None, None, 0, "unknown"),
])
def test_client_ip(peer: str | None, xff: str | None, hops: int, expected: str) -> None:
    assert client_ip(peer, xff, hops) == expected


def test_partner_prefixes_are_marked_for_their_own_rate_limit():
    table = RouteTable({"games", "payments", "players"})
    assert table.resolve("POST", "/providers/acme/bet").partner
    assert table.resolve("POST", "/webhooks/psp/events").partner
    assert not table.resolve("POST", "/v1/players/login").partner


@pytest.mark.parametrize(("path", "service"), [("/v1/wallet/me/balance", "wallet"), ("/webhooks/psp/x", "payments"),
                                               ("/v1/bonus/offers", "bonus")])
def test_a_known_service_that_is_not_running_is_named_not_hidden(path: str, service: str) -> None:
    table = RouteTable(["players"], known=["players", "wallet", "payments", "bonus"])
    with pytest.raises(NotRunning) as caught:
        table.resolve("GET", path)
    assert caught.value.service == service


def test_paths_of_no_service_stay_unproxied_with_known_services() -> None:
    # negative control: only a known service's paths turn into 503s
    table = RouteTable(["players"], known=["players", "wallet"])
    assert table.resolve("GET", "/v1/playersx/me") is None
    assert table.resolve("GET", "/v1/rgs/spin") is None


@pytest.mark.parametrize(("method", "path", "access"), [
    ("GET", "/v1/affiliates/track/summer-24", Access.PUBLIC),  # a click: anyone
    ("GET", "/v1/affiliates/me/statements/2026-11", Access.PUBLIC),  # the affiliate's API key, at affiliates
    ("GET", "/v1/affiliates/me", Access.PUBLIC),
    ("POST", "/v1/affiliates/track/summer-24", Access.PLAYER),  # only reading a link is a click
    ("GET", "/v1/affiliates/mex", Access.PLAYER),  # a prefix rule is a path segment, not a string prefix
])
def test_affiliate_clicks_and_the_affiliate_api_pass_without_a_player_token(method: str, path: str,
                                                                           access: Access) -> None:
    route = RouteTable([*SERVICES, "affiliates"]).resolve(method, path)
    assert route is not None and route.target == "affiliates" and route.access is access
