"""The gateway's route table: which service a path goes to, and what a request needs to get there.

Pure: no I/O, so the rules are unit-tested directly and the OpenAPI merge applies the same table
to path templates that the proxy applies to live paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class Access(Enum):
    PLAYER = "player"  # needs a valid player access token; X-Player-Id is forwarded
    PUBLIC = "public"  # anonymous (the service authenticates by other means, if at all)


@dataclass(frozen=True, slots=True)
class Route:
    target: str
    access: Access
    play: bool  # refused when the token's `play` claim is false (self-excluded, timed out)
    label: str  # low-cardinality name for metrics and logs
    partner: bool = False  # server-to-server traffic (game studios, PSPs): its own, larger rate limit


@dataclass(frozen=True, slots=True)
class Rule:
    """`method` None matches every method; `prefix` matches the path and everything below it."""

    method: str | None
    path: str
    prefix: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        if path == self.path:
            return True
        return self.prefix and path.startswith(self.path + "/")


PUBLIC_RULES: tuple[Rule, ...] = (
    Rule("POST", "/v1/players/register"),
    Rule("POST", "/v1/players/login"),
    Rule("POST", "/v1/players/token/refresh"),
    Rule("POST", "/v1/players/logout"),  # proven by the refresh token, which outlives access tokens
    Rule("GET", "/v1/games", prefix=True),  # the catalog
    Rule("HEAD", "/v1/games", prefix=True),
    Rule(None, "/providers", prefix=True),  # signed by the provider, checked by games
    Rule(None, "/webhooks", prefix=True),  # signed by the PSP, checked by payments
    Rule("GET", "/v1/affiliates/track", prefix=True),  # a click on a tracking link: anyone
    Rule(None, "/v1/affiliates/me", prefix=True),  # the affiliate's API key, checked by affiliates
)

# Play and paying in: refused at the edge while the token's `play` claim is false (self-excluded,
# timed out); withdrawals stay open, a player can always take their money out.
# Taking a bonus offer counts as play: a self-excluded player is refused at the edge too.
PLAY_RULES: tuple[Rule, ...] = (Rule("POST", "/v1/sessions", prefix=True), Rule("POST", "/v1/payments/deposits"),
                                Rule("POST", "/v1/bonus/offers", prefix=True))

# Fixed prefixes outside /v1 and the service that owns them.
FIXED_PREFIXES: dict[str, str] = {"providers": "games", "webhooks": "payments"}


class Blocked(Exception):
    """The path must not be proxied at all (answered 404 by the gateway itself)."""


class BadPath(Exception):
    """The path is malformed in a way that could trick a server behind the gateway."""


class NotRunning(Exception):
    """The path belongs to a service of the platform that is not running here (not deployed,
    disabled, or left out with `gameplane up --only`): 503 naming it, not a 404 that would
    suggest the route does not exist."""

    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


class RouteTable:
    def __init__(self, services: Iterable[str], *, public: tuple[Rule, ...] = PUBLIC_RULES,
                 play: tuple[Rule, ...] = PLAY_RULES, known: Iterable[str] = ()) -> None:
        self.services = frozenset(services)
        self.known = frozenset(known)  # the platform's routable services, running or not
        self.public = public
        self.play = play

    def resolve(self, method: str, path: str) -> Route | None:
        """The route for a request, None when the gateway does not proxy the path (its own
        endpoints, or a path no service of the platform owns). Raises Blocked for /internal,
        BadPath for dot segments, which a normalising server behind us could resolve elsewhere,
        and NotRunning for a known service that has no endpoint here."""
        head, _, rest = path[1:].partition("/")
        if head == "internal":
            raise Blocked(path)
        if head == "v1":
            target = rest.partition("/")[0]
            label = f"/v1/{target}"
        else:
            target = FIXED_PREFIXES.get(head, "")
            label = f"/{head}"
        if target not in self.services:
            if target in self.known:
                raise NotRunning(target)
            return None
        if "/." in path and any(seg in (".", "..") for seg in path.split("/")):
            raise BadPath(path)
        access = Access.PUBLIC if any(r.matches(method, path) for r in self.public) else Access.PLAYER
        play = access is Access.PLAYER and any(r.matches(method, path) for r in self.play)
        return Route(target, access, play, label, partner=head in FIXED_PREFIXES)


def client_ip(peer: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The client address: with N trusted proxies in front, the N-th entry from the right of
    X-Forwarded-For (each proxy appends the address it saw). Entries further left are whatever
    the client wrote and are never trusted."""
    if trusted_hops <= 0 or not forwarded_for:
        return peer or "unknown"
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    if not hops:
        return peer or "unknown"
    return hops[-min(trusted_hops, len(hops))]
