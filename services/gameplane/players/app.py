"""The players FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from gameplane.kit import periodic
from gameplane.kit.app import Runtime, create_app
from gameplane.players.api import routers
from gameplane.players.context import Clock, PlayersContext, system_clock
from gameplane.players.passwords import Passwords
from gameplane.players.safeguards import apply_due_changes
from gameplane.players.settings import PlayersSettings
from gameplane.players.staff.api import routers as staff_routers

DESCRIPTION = ("Accounts, credentials (argon2id, access JWT + rotating refresh tokens), KYC state and "
               "responsible-gaming settings: limits, time-outs, self-exclusion, reality checks; staff "
               "(back-office) identities: password + TOTP, roles, staff tokens, audit log.")

START_JOBS, STOP_JOBS = periodic.schedule(
    periodic.Job("limit-changes", lambda s: s.sweep_interval_seconds, apply_due_changes))


def build_app(settings: PlayersSettings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    """`clock` is injectable so tests can move through cooling-off periods without sleeping."""
    settings = settings or PlayersSettings()

    runtime = Runtime("players", settings, migrations="gameplane.players",
                      on_start=[START_JOBS], on_stop=[STOP_JOBS])
    ctx = PlayersContext(db=runtime.database, settings=settings,
                         passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_kib,
                                             settings.argon2_parallelism, settings.argon2_concurrency),
                         signing_key=runtime.identity, clock=clock)
    # Staff routes first: /internal/players/audit must not be taken for a player id.
    app = create_app(runtime, [*staff_routers, *routers], title="gameplane players", description=DESCRIPTION)
    app.state.players = runtime.state["players"] = ctx
    return app
