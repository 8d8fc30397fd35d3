"""A local platform's view of the catalogue (gameplane.catalog): ports, URLs and environments.

Only built services take part in `gameplane up`; the catalogue says which those are.
"""

from __future__ import annotations

import json

from gameplane import catalog
from gameplane.catalog import Service

HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 8000


def port(service: Service, base_port: int = DEFAULT_BASE_PORT) -> int:
    return base_port + service.port_offset


def url(service: Service, base_port: int = DEFAULT_BASE_PORT) -> str:
    return f"http://{HOST}:{port(service, base_port)}"


SERVICES: tuple[Service, ...] = catalog.SERVICES
PORT_OFFSETS: tuple[int, ...] = catalog.PORT_OFFSETS


def available(only: list[str] | None = None) -> list[Service]:
    """The built services, optionally restricted to the names in `only`."""
    if only:
        known = {s.name for s in SERVICES}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ValueError(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        unbuilt = sorted(n for n in only if not next(s for s in SERVICES if s.name == n).built)
        if unbuilt:
            raise ValueError(f"not built yet in this release: {', '.join(unbuilt)}")
    return [s for s in SERVICES if (not only or s.name in only) and s.built]


def endpoints(services: list[Service], base_port: int = DEFAULT_BASE_PORT) -> dict[str, str]:
    return {s.name: url(s, base_port) for s in services}


def service_env(
    service: Service,
    *,
    base_port: int,
    endpoint_map: dict[str, str],
    database_url: str | None,
    nats_url: str,
    identity_env: dict[str, str],
) -> dict[str, str]:
    """The GP_<SVC>_* environment of one service (field names of gameplane.kit.settings);
    `identity_env`: its key and the public key set (gameplane.devtools.identities)."""
    p = service.env_prefix
    env = {
        f"{p}HOST": HOST,
        f"{p}PORT": str(port(service, base_port)),
        f"{p}NATS_URL": nats_url,
        f"{p}ENDPOINTS": json.dumps(endpoint_map),
        f"{p}LOG_JSON": "true",
        **identity_env,
    }
    if database_url is not None:
        env[f"{p}DATABASE_URL"] = database_url
    return env
