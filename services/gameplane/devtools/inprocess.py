"""Run the play path of the platform (wallet, sessions, games, optionally the RGS simulator) inside
one asyncio loop, each app behind a real uvicorn listener on a loopback port.

For service-tier tests and benches that need the services talking over real HTTP with real
Postgres and NATS, without the process supervisor of `gameplane up`. The databases must exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI

from gameplane.contracts import wallet as wallet_api
from gameplane.devtools.identities import Identities, dev_identities
from gameplane.kit.auth import PLAYER_HEADER


def listener(port: int = 0) -> socket.socket:
    """A listening loopback socket on `port`, by default one the kernel picks: bound now, so nothing
    can take the port between choosing it and serving on it (apps start one after the other,
    seconds apart). A given port can be served again at once (a restarted upstream)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


@contextlib.asynccontextmanager
async def served(app: Any, sock: socket.socket | None = None, *, port: int = 0,
                 **options: Any) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) on the listening socket `sock` (default: a new one on
    `port`) until the block ends; `options` are uvicorn.Config's."""
    sock = sock or listener(port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                            lifespan="on", **{"timeout_graceful_shutdown": 2, **options})
    server = uvicorn.Server(config)

    async def serve() -> None:
        # uvicorn answers a failed lifespan startup with sys.exit(3); a SystemExit escaping a task
        # stops the whole event loop, and with it the test session (pytest INTERNALERROR): make it
        # the error of this app alone.
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:
            raise RuntimeError(f"{app.title}: startup failed (uvicorn exit {exc.code}); see the log above") from None

    task = asyncio.create_task(serve())
    try:
        for _ in range(600):
            if server.started:
                break
            if task.done():
                task.result()
                raise RuntimeError("server stopped while starting")
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError(f"app on port {port} did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class LocalPlatform:
    urls: dict[str, str]
    apps: dict[str, FastAPI]
    identities: Identities = field(default_factory=dev_identities)
    provider_secret: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def headers(self, target: str, caller: str = "gateway", player_id: uuid.UUID | None = None) -> dict[str, str]:
        h = self.identities.bearer(caller, target)
        if player_id is not None:
            h[PLAYER_HEADER] = str(player_id)
        return h


@contextlib.asynccontextmanager
async def local_platform(databases: dict[str, str], nats_url: str, *, provider_secret: str,
                         with_rgs: bool = False, games_overrides: dict[str, Any] | None = None,
                         sessions_overrides: dict[str, Any] | None = None,
                         rgs_overrides: dict[str, Any] | None = None,
                         extra_providers: dict[str, Any] | None = None) -> AsyncIterator[LocalPlatform]:
    """`databases` maps wallet/sessions/games to asyncpg URLs of empty databases."""
    from gameplane.games.app import build_app as games_app
    from gameplane.games.settings import GamesSettings, ProviderSettings
    from gameplane.sessions.app import build_app as sessions_app
    from gameplane.sessions.settings import SessionsSettings
    from gameplane.simulators.rgs.app import build_app as rgs_app
    from gameplane.simulators.rgs.settings import RgsSettings
    from gameplane.wallet.app import build_app as wallet_app
    from gameplane.wallet.settings import WalletSettings

    names = ["wallet", "sessions", "games"] + (["rgs"] if with_rgs else [])
    socks = {n: listener() for n in names}
    ports = {n: s.getsockname()[1] for n, s in socks.items()}
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    ids = dev_identities()
    common = {"nats_url": nats_url, "endpoints": urls, "log_level": "WARNING"}
    apps: dict[str, FastAPI] = {
        "wallet": wallet_app(WalletSettings(database_url=databases["wallet"], port=ports["wallet"], **common,
                                            **ids.settings("wallet"))),
        "sessions": sessions_app(SessionsSettings(database_url=databases["sessions"], port=ports["sessions"],
                                                  **common, **ids.settings("sessions"), **(sessions_overrides or {}))),
        "games": games_app(GamesSettings(
            database_url=databases["games"], port=ports["games"], **ids.settings("games"),
            # with the studio running, awards go to its award API
            providers={"rgs": ProviderSettings(dialect="canonical", secret=provider_secret,
                                               api_url=urls.get("rgs")), **(extra_providers or {})},
            **common, **(games_overrides or {}))),
    }
    if with_rgs:
        apps["rgs"] = rgs_app(RgsSettings(port=ports["rgs"], platform_url=urls["games"],
                                          provider_secret=provider_secret, **{**common, "nats_url": None},
                                          **(rgs_overrides or {})))
    async with contextlib.AsyncExitStack() as stack:
        for sock in socks.values():
            stack.callback(sock.close)
        for name in names:
            await stack.enter_async_context(served(apps[name], socks[name]))
        yield LocalPlatform(urls, apps, provider_secret=provider_secret)


async def deposit(platform: LocalPlatform, player_id: uuid.UUID, amount: int, currency: str = "EUR") -> int:
    """Credit test money through the wallet's internal deposit API (as payments would)."""
    import httpx

    body = wallet_api.DepositRequest(idempotency_key=f"test-deposit:{uuid.uuid4()}", player_id=player_id,
                                     currency=currency, amount=amount, psp="test")
    async with httpx.AsyncClient(base_url=platform.urls["wallet"], timeout=10) as http:
        resp = await http.post(wallet_api.PATH_DEPOSITS, json=body.model_dump(mode="json"),
                               headers=platform.headers("wallet", caller="payments"))
    resp.raise_for_status()
    return wallet_api.OperationResult.model_validate(resp.json()).balance.playable


async def announce_player(nats_url: str, player_id: uuid.UUID, currency: str = "EUR", *,
                          revision: int = 1, **protection: Any) -> None:
    """Publish what players publishes for an account: the protection snapshot sessions copies."""
    import nats

    from gameplane.contracts.players import ProtectionChanged
    from gameplane.kit.events import Envelope

    env = Envelope.wrap(ProtectionChanged(player_id=player_id, revision=revision, currency=currency,
                                          limits=protection.pop("limits", []), reason="test", **protection),
                        "players")
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(env.subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": str(env.id)})
    finally:
        await nc.close()


async def launch(platform: LocalPlatform, player_id: uuid.UUID, game_id: str = "fruit-fives", *,
                 ttl_seconds: int | None = None, wait: float = 10.0) -> dict[str, Any]:
    """Launch a game as the gateway would for a logged-in player; waits while sessions has not yet
    received the player's protection state (503)."""
    import httpx

    body: dict[str, Any] = {"game_id": game_id}
    if ttl_seconds is not None:
        body["ttl_seconds"] = ttl_seconds
    deadline = asyncio.get_running_loop().time() + wait
    async with httpx.AsyncClient(base_url=platform.urls["sessions"], timeout=10) as http:
        while True:
            r = await http.post("/v1/sessions", json=body, headers=platform.headers("sessions", player_id=player_id))
            if r.status_code != 503 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
    if r.status_code != 201:
        raise AssertionError(f"launch refused: {r.status_code} {r.text}")
    return r.json()  # type: ignore[no-any-return]


async def new_player(platform: LocalPlatform, nats_url: str, balance: int, currency: str = "EUR") -> uuid.UUID:
    player = uuid.uuid4()
    await announce_player(nats_url, player, currency)
    if balance:
        await deposit(platform, player, balance, currency)
    return player
