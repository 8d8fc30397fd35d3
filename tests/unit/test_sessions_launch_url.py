"""Where a session's launch_url sends the player's browser: the provider's browser-facing address."""

from __future__ import annotations

from gameplane.sessions.api import _launch_url
from gameplane.sessions.settings import SessionsSettings


def test_the_launch_url_is_on_the_providers_browser_facing_address() -> None:
    settings = SessionsSettings(endpoints={"acme": "http://casino-acme.casino.svc"}, nats_url=None,
                                game_urls={"acme": "https://play.acme.example/"})
    assert _launch_url(settings, "acme", "tok en", "fruit-fives") == (
        "https://play.acme.example/launch?token=tok+en&game=fruit-fives")


def test_without_one_it_falls_back_to_the_service_endpoint_and_else_to_none() -> None:
    settings = SessionsSettings(endpoints={"rgs": "http://127.0.0.1:8100"}, nats_url=None,
                                game_urls={"acme": "https://play.acme.example"})
    assert _launch_url(settings, "rgs", "t", "g") == "http://127.0.0.1:8100/launch?token=t&game=g"
    assert _launch_url(settings, "other", "t", "g") is None
