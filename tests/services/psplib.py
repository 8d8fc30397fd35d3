"""Test helpers around the PSP simulator: the simulator served on a loopback port, a webhook receiver
that records every delivery (and can be made to fail), and a client that completes the hosted page
by reading its HTML form and posting it, as a browser would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gameplane.devtools.inprocess import listener, served
from gameplane.devtools.pspsim import PspRun, psp_simulator
from gameplane.simulators.psp.settings import DIALECTS, PspSettings


@dataclass
class Delivery:
    dialect: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """Plays the platform's /webhooks/payments/{dialect}: records, answers `status` (or fails the
    next `fail_next[dialect]` deliveries with 503)."""

    deliveries: list[Delivery] = field(default_factory=list)
    fail_next: dict[str, int] = field(default_factory=dict)
    status: int = 200

    def app(self) -> Starlette:
        async def hook(request: Request) -> PlainTextResponse:
            dialect = request.path_params["dialect"]
            body = await request.body()
            status = self.status
            if self.fail_next.get(dialect, 0) > 0:
                self.fail_next[dialect] -= 1
                status = 503
            self.deliveries.append(Delivery(dialect, dict(request.headers), body, status))
            return PlainTextResponse("ok" if status < 300 else "down", status_code=status)

        return Starlette(routes=[Route("/webhooks/payments/{dialect}", hook, methods=["POST"])])

    def acked(self, dialect: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries if d.status < 300 and (dialect is None or d.dialect == dialect)]


@dataclass
class Sim:
    run: PspRun
    receiver: Receiver
    receiver_url: str

    @property
    def url(self) -> str:
        return self.run.url

    @property
    def settings(self) -> PspSettings:
        return self.run.settings

    @property
    def keys(self) -> dict[str, dict[str, str]]:
        return self.run.keys

    def connection(self, dialect: str) -> dict[str, str]:
        return self.run.connection(dialect)

    def control(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, headers=self.run.control_headers())


@contextlib.asynccontextmanager
async def running_psp(receiver: Receiver | None = None, *, webhook_urls: dict[str, str] | None = None,
                      **overrides: Any) -> AsyncIterator[Sim]:
    """The simulator (both dialects, fresh keys) and a receiver of its webhooks, each on its own port."""
    receiver = receiver or Receiver()
    rsock = listener()
    rurl = f"http://127.0.0.1:{rsock.getsockname()[1]}"
    urls = webhook_urls or {d: f"{rurl}/webhooks/payments/{d}" for d in DIALECTS}
    overrides = {"retry_max_seconds": 0.5, **overrides}
    try:
        async with served(receiver.app(), rsock), psp_simulator(urls, **overrides) as run:  # type: ignore[arg-type]
            yield Sim(run, receiver, rurl)
    finally:
        rsock.close()


async def eventually(check: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy (the simulator's webhooks are asynchronous)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def eventually_async(check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0,
                           what: str = "condition") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: list[tuple[str, str]] = []
        self.radios: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action, self.method = a.get("action"), a.get("method", "get").lower()
        elif tag == "input" and a.get("type") == "radio":
            self.radios.setdefault(a["name"], []).append(a["value"])
            if "checked" in a:
                self.fields[a["name"]] = a["value"]
        elif tag == "input" and "name" in a:
            self.fields.setdefault(a["name"], a.get("value", ""))
        elif tag == "button" and a.get("type") == "submit":
            self.buttons.append((a["name"], a["value"]))


async def complete_page(http: httpx.AsyncClient, redirect_url: str, *, button: str = "pay",
                        **inputs: str) -> httpx.Response:
    """Open the hosted page, fill its form's inputs, press a submit button; the PSP's answer (not followed)."""
    page = await http.get(redirect_url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    form = _Form()
    form.feed(page.text)
    assert form.action and form.method == "post", "the hosted page has no POST form"
    for name, value in inputs.items():
        assert name in form.fields or name in form.radios, f"the form has no field {name!r}"
        if name in form.radios:
            assert value in form.radios[name], f"{name} offers {form.radios[name]}, not {value!r}"
    (pressed,) = [(n, v) for n, v in form.buttons if v == button]
    data = {**form.fields, **inputs, pressed[0]: pressed[1]}
    return await http.post(urljoin(redirect_url, form.action), data=data, follow_redirects=False)
