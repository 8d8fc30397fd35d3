"""Pure parts of the RGS play page: which framing sites count as an allowed origin, and money as
the page shows it."""

from __future__ import annotations

import pytest

from gameplane.kit.pages import ContentSecurityPolicy, SecurityHeaders
from gameplane.simulators.rgs import page


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:21010", "http://127.0.0.1:21010"),
    ("http://127.0.0.1:21010/", "http://127.0.0.1:21010"),
    ("HTTPS://Casino.Example", "https://casino.example"),
    ("https://casino.example:443", "https://casino.example"),
    ("http://[::1]:8080", "http://[::1]:8080"),
])
def test_an_origin_is_scheme_host_and_port(url: str, expected: str) -> None:
    assert page.origin(url) == expected


@pytest.mark.parametrize("url", [
    "", "casino.example", "javascript:alert(1)", "ftp://casino.example", "http://casino.example/lobby",
    "http://casino.example?x=1", "http://user@casino.example", "http://casino.example:99999", "null",
])
def test_anything_but_an_origin_is_not_one(url: str) -> None:
    assert page.origin(url) is None


def test_a_configured_parent_that_is_not_an_origin_stops_the_start() -> None:
    assert page.allowed_origins(["http://a.example/", "http://a.example", "https://b.example"]) == (
        "http://a.example", "https://b.example")
    with pytest.raises(ValueError, match="not an origin"):
        page.allowed_origins(["https://casino.example/lobby"])


def test_money_is_shown_from_integer_minor_units() -> None:
    assert [page.money(m, "EUR") for m in (0, 5, 100, 123456, -250)] == [
        "0.00 EUR", "0.05 EUR", "1.00 EUR", "1234.56 EUR", "-2.50 EUR"]


def test_a_known_refusal_reads_in_words_and_an_unknown_one_still_reads() -> None:
    assert "deposit" in page.refusal_words("insufficient-funds")
    assert page.refusal_words("something-new") == page.UNKNOWN_REFUSAL
    assert {"session-expired", "player-blocked"} <= page.SESSION_ENDED


def test_framing_by_named_sites_drops_x_frame_options_and_names_them() -> None:
    framed = ContentSecurityPolicy(frame_ancestors=("https://casino.example",))
    assert "frame-ancestors https://casino.example;" in framed.header()
    headers = dict(SecurityHeaders(app=None, policy=framed).headers)  # type: ignore[arg-type]
    assert b"x-frame-options" not in headers
    # negative control: the default policy is never framed, by CSP and by X-Frame-Options
    default = ContentSecurityPolicy()
    assert "frame-ancestors 'none'" in default.header()
    assert dict(SecurityHeaders(app=None, policy=default).headers)[b"x-frame-options"] == b"DENY"  # type: ignore[arg-type]
