"""Staff identities: the back office's people, issued by the players service.

`totp` (RFC 6238 second factor with replay protection), `schemas`, `accounts` (enrolment, login,
role changes, bootstrap of the first admin; every change audited), `api` (routes under
/internal/players/staff), `__main__` (`python -m gameplane.players.staff create-admin`).
"""
