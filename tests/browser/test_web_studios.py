"""The player site frames a game only from its own studio's browser-facing address (GP_WEB_GAME_URLS,
which the operator fills from providers[].gameUrl): a studio the site has no address for is never
framed (no in-cluster name, no development default), and the player is told so."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from playwright.sync_api import expect
from test_web_journey import register_and_sign_in

from gameplane.devtools.harness import Platform
from gameplane.devtools.infra import free_port, wait_for_port


@pytest.fixture
def studioless_site(platform: Platform, tmp_path: Path) -> Iterator[str]:
    """The run's player site once more, as its own process with the run's settings, but knowing the
    address of no studio."""
    env = psutil.Process(int(platform.state()["web"]["pid"])).environ()  # type: ignore[call-overload]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env.update({"GP_WEB_PORT": str(port), "GP_WEB_PUBLIC_URL": url, "GP_WEB_GAME_URLS": "{}"})
    with (tmp_path / "web.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gameplane.web"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc=proc)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_game_whose_studio_has_no_browser_address_is_refused_not_framed(page: Any,
                                                                          studioless_site: str) -> None:
    site = studioless_site
    policy = dict(d.strip().split(" ", 1) for d in
                  httpx.get(f"{site}/login", timeout=30).headers["content-security-policy"].split(";"))
    assert policy["frame-src"] == "'none'"  # no studio may be framed at all
    register_and_sign_in(page, site)
    page.goto(f"{site}/lobby?q=fruit")
    page.get_by_role("button", name="Play Fruit Fives").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Fruit Fives cannot be opened on this site")
    expect(page.locator("iframe")).to_have_count(0)


def test_the_runs_own_site_frames_the_same_game_from_its_studio(platform: Platform) -> None:
    """The control: with the studio's address (gameplane up gives the run's RGS), the policy admits it."""
    env = psutil.Process(int(platform.state()["web"]["pid"])).environ()  # type: ignore[call-overload]
    studios = json.loads(env["GP_WEB_GAME_URLS"])
    assert studios == {"rgs": platform.url("rgs")}
    policy = dict(d.strip().split(" ", 1) for d in httpx.get(
        platform.url("web") + "/login", timeout=30).headers["content-security-policy"].split(";"))
    assert policy["frame-src"] == f"'self' {platform.url('rgs')}"
