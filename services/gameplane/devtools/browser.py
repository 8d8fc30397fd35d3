"""A real browser for the browser tier: Debian's Chromium driven by Playwright (never a browser
Playwright downloads), screenshots kept as artefacts, and axe-core's accessibility check.

axe-core comes from the `axe-playwright-python` package (PyPI), which ships axe.min.js; the check
runs inside the page.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("GP_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google's hosts, which this
# machine's closed network refuses (see the machine notes); root needs --no-sandbox.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
# A phone-sized screen is a requirement of the issue; tests pick it with `viewport=PHONE`.
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(os.environ.get("GP_BROWSER_ARTIFACTS", ".gameplane/artifacts/browser"))
BLOCKING_IMPACTS = frozenset({"serious", "critical"})


def chromium_path() -> str | None:
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


def launch(playwright: Any) -> Any:
    path = chromium_path()
    if path is None:
        raise RuntimeError(f"no Chromium at {CHROMIUM} (Debian package chromium: make host-deps)")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)


def screenshot(page: Any, name: str) -> Path:
    """Keep a full-page screenshot as a test artefact (<ARTIFACTS>/<name>.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def accessibility_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in BLOCKING_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} — "
                     + "; ".join(n["target"][0] if n.get("target") else "?" for n in v["nodes"][:5])
                     for v in violations)


@contextlib.contextmanager
def static_site(pages: dict[str, bytes]) -> Iterator[str]:
    """Serve `pages` (path -> body; the dict may change while served) on a loopback port, for
    pages a test needs from a real local origin (Chromium will not let a page it made up frame a
    local server)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            kind = mimetypes.guess_type(self.path)[0] or "text/html"
            self.send_header("content-type", f"{kind}; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
