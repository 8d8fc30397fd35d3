"""What the gateway itself answers in front of the services: raised by the proxy, and added to
every operation of the merged OpenAPI document (gateway.openapi) according to its route."""

from __future__ import annotations

from gameplane.kit.problems import ProblemType

# Every routed operation.
BAD_CONTENT_LENGTH = ProblemType(400, "bad-request", "Malformed Content-Length")
PAYLOAD_TOO_LARGE = ProblemType(413, "payload-too-large", "Request body too large")
RATE_LIMITED = ProblemType(429, "rate-limited", "Too many requests")
SERVICE_UNAVAILABLE = ProblemType(503, "service-unavailable", "Service unavailable")
# Routes that need a player's access token.
TOKEN_REQUIRED = ProblemType(401, "unauthenticated", "Access token required")
TOKEN_EXPIRED = ProblemType(401, "token-expired", "Access token expired")
# Routes that start play.
PLAY_BLOCKED = ProblemType(403, "play-blocked", "Play is blocked")
# Paths no operation documents (never added to an operation).
NOT_ROUTED = ProblemType(404, "not-found", "Not Found")
BAD_PATH = ProblemType(400, "bad-path", "Malformed path")

EVERY_ROUTE = (BAD_CONTENT_LENGTH, PAYLOAD_TOO_LARGE, RATE_LIMITED, SERVICE_UNAVAILABLE)
PLAYER_ROUTE = (TOKEN_REQUIRED, TOKEN_EXPIRED)
PLAY_ROUTE = (PLAY_BLOCKED,)
