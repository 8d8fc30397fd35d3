"""The player site's pages at route level, in front of a real gateway (in process, on a loopback
port) whose platform has no players service running: what every page carries (CSP, hardening
headers, cookie flags), CSRF on every form post, sign-in required for the player's pages, and a
platform that cannot answer shown as "unavailable right now" rather than an error."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie

import httpx
import pytest

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.testing import running
from gameplane.gateway.app import build_app as gateway_app
from gameplane.gateway.settings import GatewaySettings
from gameplane.kit.pages import CSRF_COOKIE
from gameplane.web.app import build_app
from gameplane.web.settings import WebSettings

RGS = "http://games.example:9100"
STUDIO = "https://play.acme-slots.example"  # a second provider's game pages (a path is not part of an origin)
PSP = "https://pay.example"


@pytest.fixture(scope="module")
async def gateway() -> AsyncIterator[str]:
    # Every platform service known, none running: the gateway answers 503 `service-unavailable`.
    settings = GatewaySettings(endpoints={}, nats_url=None, **dev_identities().settings("gateway"))
    async with served(gateway_app(settings), listener()) as url:
        yield url


@pytest.fixture
async def site(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = WebSettings(endpoints={"gateway": gateway},
                           game_urls={"rgs": RGS, "acme-slots": f"{STUDIO}/games"}, psp_urls=[f"{PSP}/pay"],
                           public_url="https://casino.example", **dev_identities().settings("web"))
    # https: the site's cookies are Secure (and __Host-), which a client sends over https only
    async with running(build_app(settings), base_url="https://casino.example") as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found, html
    return found.group(1)


async def test_every_page_carries_the_policy_and_the_hardening_headers(site: httpx.AsyncClient) -> None:
    r = await site.get("/login")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"  # no inline script or style
    assert csp["frame-src"] == f"'self' {RGS} {STUDIO}"  # each studio's game pages, nothing else
    assert csp["form-action"] == f"'self' {PSP}"  # forms (and their redirects) to the PSP's hosted pages
    assert csp["frame-ancestors"] == "'none'" and r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"
    assert '<html lang="en">' in r.text and 'for="email"' in r.text and 'for="password"' in r.text


async def test_the_csrf_cookie_is_host_only_secure_httponly_and_strict(site: httpx.AsyncClient) -> None:
    r = await site.get("/register")
    raw = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith(CSRF_COOKIE))
    morsel = SimpleCookie(raw)[CSRF_COOKIE]
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "strict" and morsel["path"] == "/"
    assert CSRF_COOKIE.startswith("__Host-") and not morsel["domain"]
    assert morsel.value == csrf_of(r.text)  # the page echoes it for its forms


@pytest.mark.parametrize("path", ["/login", "/register", "/logout", "/cashier/deposit", "/safer-gambling/limits",
                                  "/safer-gambling/self-exclusion", "/games/fruit-fives/launch", "/verify"])
async def test_a_form_post_without_the_csrf_token_is_refused(site: httpx.AsyncClient, path: str) -> None:
    await site.get("/login")  # the client holds a CSRF cookie: only the echo is missing
    r = await site.post(path, data={"email": "a@example.com", "password": "x"})
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/csrf-failed")
    wrong = await site.post(path, data={"csrf_token": "not-the-cookie"})
    assert wrong.status_code == 403
    # a person's browser is told in words what to do
    page = await site.post(path, data={"csrf_token": "not-the-cookie"}, headers={"accept": "text/html"})
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "This form has expired" in page.text and "reload the page" in page.text


async def test_with_its_token_the_post_goes_through_to_the_platform(site: httpx.AsyncClient) -> None:
    # Negative control of the refusals above: the same post with the token reaches the gateway,
    # which has no players service running here: the page says so in words, not an error page.
    token = csrf_of((await site.get("/login")).text)
    r = await site.post("/login", data={"csrf_token": token, "email": "a@example.com", "password": "pw"})
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    assert "This feature is unavailable right now" in r.text and "players" in r.text


@pytest.mark.parametrize("path", ["/lobby", "/cashier", "/history", "/bonuses", "/safer-gambling", "/balance",
                                  "/verify", "/play/00000000-0000-0000-0000-000000000000"])
async def test_the_players_pages_need_a_signed_in_player(site: httpx.AsyncClient, path: str) -> None:
    r = await site.get(path)
    assert r.status_code == 303 and r.headers["location"] == "/login"


async def test_a_forged_session_cookie_signs_nobody_in(site: httpx.AsyncClient) -> None:
    site.cookies.set("__Host-gp-player", "eyJub3QiOiJ0aGlzIn0", domain="casino.example")
    r = await site.get("/lobby")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "__Host-gp-player=\"\"" in r.headers.get("set-cookie", "") or "Max-Age=0" in r.headers.get("set-cookie", "")


async def test_help_is_open_to_everyone_and_links_the_help_organisations(site: httpx.AsyncClient) -> None:
    r = await site.get("/help")
    assert r.status_code == 200
    assert "https://www.begambleaware.org/" in r.text and "Self-exclusion" in r.text


@pytest.mark.parametrize("site_hops", [1, 0])
async def test_the_gateway_charges_each_players_address_not_the_sites(site_hops: int) -> None:
    # A gateway behind one trusted proxy (the site here), one request per address, a players
    # service that does not answer (so a request that passes the limit is a 503, one that does
    # not a 429).
    settings = GatewaySettings(endpoints={"players": "http://127.0.0.1:9"}, nats_url=None, forwarded_for_hops=1,
                               rate_limit_ip_rate=0.001, rate_limit_ip_burst=1, **dev_identities().settings("gateway"))
    async with served(gateway_app(settings), listener()) as gateway:
        web = WebSettings(endpoints={"gateway": gateway}, forwarded_for_hops=site_hops,
                          **dev_identities().settings("web"))
        async with running(build_app(web), base_url="https://casino.example") as site:
            token = csrf_of((await site.get("/login")).text)

            async def sign_in_from(address: str) -> httpx.Response:
                return await site.post("/login", data={"csrf_token": token, "email": "a@example.com", "password": "p"},
                                       headers={"x-forwarded-for": address})

            assert (await sign_in_from("203.0.113.7")).status_code == 503  # through the limit to players
            again = await sign_in_from("203.0.113.7")
            assert again.status_code == 429 and "Too many requests" in again.text  # said on the form
            other = await sign_in_from("198.51.100.20")
            # With the site trusting its proxy, another player has a bucket of their own; a site
            # that trusts nobody sends its own address for everyone (negative control).
            assert other.status_code == (503 if site_hops == 1 else 429)
