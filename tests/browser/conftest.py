"""Browser tier: the platform's frontends in a real browser (Playwright driving Debian's Chromium).

`platform` (session) is a running `gameplane up`, as in the system tier; `browser` (session) one
Chromium; `page` a fresh browser context (own cookies) per test, `phone_page` the same on a
phone-sized screen. `snap(page, name)` keeps a screenshot as an artefact and checks the page with
axe-core: a serious or critical accessibility violation fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gameplane.devtools import browser as chromium
from gameplane.devtools.harness import Platform, launch


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = launch(tmp_path_factory.mktemp("platform"))
    yield running
    assert running.shutdown() == 0


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if chromium.chromium_path() is None:
        pytest.skip("Debian's chromium is not installed (make host-deps installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = chromium.launch(playwright)
        yield instance
        instance.close()


def _page(browser: Any, viewport: dict[str, int]) -> Iterator[Any]:
    context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    yield from _page(browser, chromium.DESKTOP)


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    yield from _page(browser, chromium.PHONE)


@pytest.fixture
def snap() -> Callable[[Any, str], None]:
    def check(page: Any, name: str) -> None:
        chromium.screenshot(page, name)
        violations = chromium.accessibility_violations(page)
        assert not violations, f"{name}: accessibility violations\n{chromium.describe(violations)}"

    return check
