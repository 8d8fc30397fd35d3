"""The browser tier's own checks work: Chromium renders a page, and axe-core reports what a
person using a screen reader or a keyboard would stumble on (the negative control for every
`snap` in the frontends' tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gameplane.devtools import browser as chromium

PAGES = {
    "/good": b"""<!doctype html><html lang="en"><head><title>Good</title></head><body><main>
<h1>Sign in</h1><form><label for="e">Email</label><input id="e" name="e" type="email">
<button type="submit">Sign in</button></form></main></body></html>""",
    # an input nobody can name, an image without text, a button without a label
    "/bad": b"""<!doctype html><html><head></head><body><form><input name="e" type="email">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><button></button></form></body></html>""",
}


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with chromium.static_site(PAGES) as url:
        yield url


def test_a_well_formed_page_has_no_serious_violations(page, site: str) -> None:
    page.goto(f"{site}/good")
    assert page.get_by_label("Email").is_visible()
    assert chromium.accessibility_violations(page) == []


def test_unlabelled_controls_and_images_are_reported(page, site: str) -> None:
    page.goto(f"{site}/bad")
    found = {v["id"] for v in chromium.accessibility_violations(page)}
    assert {"label", "image-alt", "button-name"} <= found


def test_screenshots_are_kept_as_artefacts(page, site: str) -> None:
    page.goto(f"{site}/good")
    path = chromium.screenshot(page, "browser-check-good")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
