"""The PSP simulator inside the caller's asyncio loop, behind a real uvicorn listener on a loopback
port, with fresh keys: for service-tier tests and benches of payments (and the adapter contract
suite) that need a payment provider without `gameplane up`.

    async with psp_simulator({"simpsp": hook_url, "cardgw": hook_url2}, seed=7) as psp:
        adapter = build("simpsp", psp.connection("simpsp"))
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from gameplane.devtools.inprocess import listener, served
from gameplane.simulators.psp.settings import DIALECTS, PspSettings


@dataclass(frozen=True)
class PspRun:
    url: str
    settings: PspSettings
    keys: dict[str, dict[str, str]]  # dialect -> {"secret", "api_key"}
    app: Any = None  # the simulator's app, so a test can read what the PSP holds (its Store)

    def connection(self, dialect: str) -> dict[str, str]:
        """What payments needs for this PSP (an entry of GP_PAYMENTS_PSPS)."""
        return {"base_url": f"{self.url}/{dialect}", **self.keys[dialect]}

    def control_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[DIALECTS[0]]['api_key']}"}


def new_psp_keys() -> dict[str, dict[str, str]]:
    """Random webhook secrets and API keys, one pair per dialect (never a fixed, published one)."""
    return {d: {"secret": secrets.token_hex(32), "api_key": f"{d}_{secrets.token_hex(16)}"} for d in DIALECTS}


@contextlib.asynccontextmanager
async def psp_simulator(webhook_urls: dict[str, str], *, keys: dict[str, dict[str, str]] | None = None,
                        **overrides: Any) -> AsyncIterator[PspRun]:
    """Both dialects, posting their webhooks to `webhook_urls[dialect]`; `overrides` are PspSettings
    fields (seed, duplicate_ratio, payout_delay_seconds, ...). Quick retries unless overridden."""
    from gameplane.simulators.psp.app import build_app

    keys = keys or new_psp_keys()
    sock = listener()
    port = sock.getsockname()[1]
    fields: dict[str, Any] = {"port": port, "log_level": "WARNING", "retry_initial_seconds": 0.05,
                              "retry_max_seconds": 1.0, "tick_seconds": 0.05}
    for d in DIALECTS:
        fields |= {f"{d}_secret": keys[d]["secret"], f"{d}_api_key": keys[d]["api_key"],
                   f"{d}_webhook_url": webhook_urls.get(d)}
    settings = PspSettings(**{**fields, **overrides})
    try:
        app = build_app(settings)
        async with served(app, sock) as url:
            yield PspRun(url, settings, keys, app)
    finally:
        sock.close()
