"""The service table of a local platform (docs/architecture.md, "Services and local ports").

A service takes part in `gameplane up` only once its package has a `__main__` module, so
services not built yet are simply absent. Add a row here when a new service gets a port.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass

HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 8000


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port_offset: int  # local port = base port + offset (8000 + offset by default)
    database: bool  # owns a database gp_<name>

    @property
    def env_prefix(self) -> str:
        return f"GP_{self.name.upper()}_"

    @property
    def database_name(self) -> str | None:
        return f"gp_{self.name}" if self.database else None

    def port(self, base_port: int = DEFAULT_BASE_PORT) -> int:
        return base_port + self.port_offset

    def url(self, base_port: int = DEFAULT_BASE_PORT) -> str:
        return f"http://{HOST}:{self.port(base_port)}"

    def is_built(self) -> bool:
        try:
            return importlib.util.find_spec(f"{self.module}.__main__") is not None
        except ModuleNotFoundError:
            return False


# Order matters: services start in this order and the gateway comes first in every listing.
SERVICES: tuple[Service, ...] = (
    Service("gateway", "gameplane.gateway", 0, database=False),
    Service("players", "gameplane.players", 1, database=True),
    Service("wallet", "gameplane.wallet", 2, database=True),
    Service("games", "gameplane.games", 3, database=True),
    Service("sessions", "gameplane.sessions", 4, database=True),
    Service("rgs", "gameplane.simulators.rgs", 100, database=False),
)

PORT_OFFSETS: tuple[int, ...] = tuple(s.port_offset for s in SERVICES)


def available(only: list[str] | None = None) -> list[Service]:
    """The built services, optionally restricted to the names in `only`."""
    if only:
        known = {s.name for s in SERVICES}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [s for s in SERVICES if (not only or s.name in only) and s.is_built()]


def endpoints(services: list[Service], base_port: int = DEFAULT_BASE_PORT) -> dict[str, str]:
    return {s.name: s.url(base_port) for s in services}


def service_env(
    service: Service,
    *,
    base_port: int,
    endpoint_map: dict[str, str],
    database_url: str | None,
    nats_url: str,
    service_token_secret: str,
    player_token_secret: str,
) -> dict[str, str]:
    """The GP_<SVC>_* environment of one service (field names of gameplane.kit.settings)."""
    p = service.env_prefix
    env = {
        f"{p}HOST": HOST,
        f"{p}PORT": str(service.port(base_port)),
        f"{p}NATS_URL": nats_url,
        f"{p}SERVICE_TOKEN_SECRET": service_token_secret,
        f"{p}PLAYER_TOKEN_SECRET": player_token_secret,
        f"{p}ENDPOINTS": json.dumps(endpoint_map),
        f"{p}LOG_JSON": "true",
    }
    if database_url is not None:
        env[f"{p}DATABASE_URL"] = database_url
    return env
