"""The one catalogue of gameplane's services: the single source every other list is derived from.

The CLI (`gameplane up`, `gameplane services`), the service image's launcher, the operator's chart
values and defaults are computed from this table; the umbrella chart's service blocks, its
values schema and the CRD's service enum and "not built yet" rule are checked against it by
tests/unit/test_catalog.py. Adding a service means adding a row here first.

Pure data, no imports beyond the standard library: the operator image carries this module
without the services' dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["service", "simulator"]


@dataclass(frozen=True)
class Service:
    name: str
    module: str  # the Python module a container or `gameplane up` runs (`python -m <module>`)
    port_offset: int  # local port = base port + offset (8000 + offset by default)
    database: bool  # owns a database gp_<name>
    built: bool  # whether the code exists in this release; unbuilt ones can be neither run nor enabled
    kind: Kind = "service"
    calls: tuple[str, ...] = ()  # services it calls synchronously (HTTP), which must run beside it
    summary: str = ""
    routed: bool = True  # has a /v1 API the gateway routes to; a site in front of the gateway has none

    @property
    def env_prefix(self) -> str:
        return f"GP_{self.name.upper()}_"

    @property
    def database_name(self) -> str | None:
        return f"gp_{self.name}" if self.database else None

    @property
    def enabled_by_default(self) -> bool:
        """What a platform runs unless told otherwise: every built service, no simulator."""
        return self.built and self.kind == "service"


# Order matters: services start in this order and the gateway comes first in every listing.
SERVICES: tuple[Service, ...] = (
    Service("gateway", "gameplane.gateway", 0, database=False, built=True,
            calls=("players", "wallet", "games", "sessions", "payments", "bonus", "affiliates"),
            summary="the single entry point: tokens, routing, rate limits, merged OpenAPI"),
    Service("players", "gameplane.players", 1, database=True, built=True,
            summary="accounts, credentials, KYC, responsible-gaming settings"),
    Service("wallet", "gameplane.wallet", 2, database=True, built=True,
            summary="the double-entry ledger: the only writer of money"),
    # rgs: the simulator's award API (free spins), when it runs in the platform (development); real
    # studios are outside the cluster (the charts' egress.providers)
    Service("games", "gameplane.games", 3, database=True, built=True, calls=("wallet", "sessions", "rgs"),
            summary="game catalogue, provider registry, the seamless-wallet API providers call"),
    Service("sessions", "gameplane.sessions", 4, database=True, built=True, calls=("games", "players"),
            summary="game sessions, session time, reality checks"),
    # psp: the simulator's API, when it runs in the platform (development); real PSPs are outside
    # the cluster (the charts' egress.paymentProviders)
    Service("payments", "gameplane.payments", 5, database=True, built=True,
            calls=("wallet", "players", "risk", "psp"),
            summary="payment intents, payouts, PSP webhooks, reconciliation"),
    Service("bonus", "gameplane.bonus", 6, database=True, built=True, calls=("wallet", "games"),
            summary="campaigns, grants, wagering"),
    Service("risk", "gameplane.risk", 7, database=True, built=True,
            summary="allow/review/deny decisions, velocity rules, markers of harm"),
    Service("affiliates", "gameplane.affiliates", 8, database=True, built=True,
            summary="tracking links, attribution, commissions, statements"),
    Service("analytics", "gameplane.analytics", 9, database=True, built=True, calls=("games",),
            summary="fact tables and KPIs that reconcile with the ledger"),
    # The client layer: server-rendered sites on the public and the back-office APIs.
    Service("web", "gameplane.web", 10, database=False, built=True, calls=("gateway",), routed=False,
            summary="the player site: lobby, game launch, cashier, history, bonuses, safer-gambling tools"),
    Service("backoffice", "gameplane.backoffice", 11, database=False, built=True,
            calls=("players", "wallet", "games", "payments", "bonus", "risk", "affiliates", "analytics"),
            summary="staff screens by role: players, KYC, withdrawals, risk cases, campaigns, statements, KPIs"),
    Service("rgs", "gameplane.simulators.rgs", 100, database=False, built=True, kind="simulator",
            calls=("gateway",),
            summary="simulated third-party game studio (remote game server)"),
    Service("psp", "gameplane.simulators.psp", 101, database=False, built=True, kind="simulator",
            calls=("gateway",),  # its webhooks, to payments through the gateway's /webhooks
            summary="simulated payment service provider"),
)  # fmt: skip

BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
BUILT: tuple[str, ...] = tuple(s.name for s in SERVICES if s.built)
NOT_BUILT: tuple[str, ...] = tuple(s.name for s in SERVICES if not s.built)
DEFAULT_ENABLED: tuple[str, ...] = tuple(s.name for s in SERVICES if s.enabled_by_default)
PORT_OFFSETS: tuple[int, ...] = tuple(s.port_offset for s in SERVICES)


def get(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise LookupError(f"unknown service {name!r}; known: {', '.join(NAMES)}") from None


def missing_dependencies(names: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """For each service in `names`, the services it calls that are not in `names`."""
    chosen = set(names)
    out = {n: [c for c in get(n).calls if c not in chosen] for n in names}
    return {n: m for n, m in out.items() if m}
