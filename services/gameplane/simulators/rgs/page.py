"""The playable page of Fruit Fives (`GET /play`): what the player site opens in a frame.

The page has no session of its own: the launch token in its URL is the session, as in real studios'
launch URLs. It plays through the simulator's JSON endpoint (`POST /sessions/{token}/spins`), so
every spin takes the real seamless-wallet path, and after each round tells the framing site the
new balance with `postMessage` — only to an origin it was configured to trust (`allowed_parents`),
which is also the only site allowed to frame it (CSP frame-ancestors).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files
from urllib.parse import urlsplit

from fastapi.templating import Jinja2Templates

from gameplane.kit.pages import ContentSecurityPolicy

ROUND_MESSAGE = "gameplane.round"  # the `type` of the message the framing site listens for
DEFAULT_STAKE = 100

# Refusals after which the session cannot play again: the platform ended it (time-out,
# self-exclusion, a session limit) or no longer knows it.
SESSION_ENDED = frozenset({"session-expired", "player-blocked", "invalid-token"})

# What the player reads for each refusal of the platform (codes: gameplane.contracts.games.ERROR_CODES).
REFUSALS = {
    "insufficient-funds": "Not enough money for this stake. Choose a smaller stake or make a deposit.",
    "stake-out-of-range": "This stake is not allowed for your account. Choose another stake.",
    "bonus-max-stake": "This stake is above what your bonus allows. Choose a smaller stake.",
    "amount-out-of-range": "This stake is not allowed. Choose another stake.",
    "session-expired": "Your game session has ended (a time-out, a limit or self-exclusion ended it). "
                       "No more spins can be played here.",
    "player-blocked": "Your account may not play right now (a time-out or self-exclusion is in force), "
                      "so this game session has ended.",
    "invalid-token": "The casino no longer knows this game session. Open the game again from the lobby.",
    "dependency-unavailable": "The casino could not take this spin right now. Your balance is unchanged; "
                              "try again shortly.",
}
UNKNOWN_REFUSAL = "The casino refused this spin. Your balance is unchanged."

templates = Jinja2Templates(directory=str(files("gameplane.simulators.rgs") / "templates"))


def money(minor: int, currency: str) -> str:
    """Minor units as the page shows them (every currency the platform offers has two decimals)."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{units}.{cents:02d} {currency}"


def refusal_words(code: str | None) -> str:
    return REFUSALS.get(code or "", UNKNOWN_REFUSAL)


def origin(url: str) -> str | None:
    """The origin (scheme://host[:port]) an http(s) URL names, or None for anything else — paths,
    credentials and other schemes included, so that a configured value is an origin, not a prefix."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username is not None):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def allowed_origins(parents: Iterable[str]) -> tuple[str, ...]:
    """The configured parents as origins; a value that is not one is a configuration error."""
    out = []
    for p in parents:
        o = origin(p)
        if o is None:
            raise ValueError(f"GP_RGS_ALLOWED_PARENTS: {p!r} is not an origin (scheme://host[:port])")
        out.append(o)
    return tuple(dict.fromkeys(out))


def policy(parents: tuple[str, ...]) -> ContentSecurityPolicy:
    return ContentSecurityPolicy(frame_ancestors=parents)
