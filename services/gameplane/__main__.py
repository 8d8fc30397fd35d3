"""`python -m gameplane [--reload DIR] <service>`: run one service of the catalogue (the image's entrypoint).

`python -m gameplane migrate <service>`: bring the service's database to this release's head and
exit (the chart's migration Job, once per release; docs/upgrades.md). It waits for the database as
a starting service does; the DSN is the service's own setting (GP_<SERVICE>_DATABASE_URL).

The service comes from the argument, else from $GP_SERVICE; it must be a built service or simulator
of `gameplane.catalog`. Its module runs as `__main__`, in this process: no extra interpreter, and
signals reach the service directly.

`--reload DIR` runs the service as a child process and restarts it whenever a .py file under DIR
changes (skaffold's file sync in a dev cluster: the chart copies the installed package into a
writable directory on PYTHONPATH and syncs edits into it).
"""

from __future__ import annotations

import argparse
import os
import runpy
import shlex
import signal
import sys
from pathlib import Path
from types import FrameType

from gameplane import catalog

PROG = "python -m gameplane"
USAGE_EXIT = 2  # as argparse: the command line (or GP_SERVICE) is wrong


class UsageError(Exception):
    """A one-line reason the launcher refuses to start."""


def resolve(name: str | None) -> catalog.Service:
    """The catalogue entry to run, or a UsageError naming what is wrong."""
    built = ", ".join(catalog.BUILT)
    if not name:
        raise UsageError(f"no service given: pass one as an argument or set GP_SERVICE (one of: {built})")
    if name not in catalog.BY_NAME:
        raise UsageError(f"unknown service {name!r} (one of: {built})")
    service = catalog.get(name)
    if not service.built:
        raise UsageError(f"service {name!r} is not built in this release (one of: {built})")
    return service


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(service: catalog.Service) -> None:
    """Run the service's module as `__main__` in this process."""
    # PID 1 in a container ignores SIGTERM unless a handler is installed: this one covers imports and
    # startup. uvicorn replaces it while serving and re-raises the signal after its graceful shutdown,
    # which lands here again and ends the process.
    signal.signal(signal.SIGTERM, _terminate)
    sys.argv = [service.module]
    runpy.run_module(service.module, run_name="__main__", alter_sys=True)


def migrate(service: catalog.Service) -> int:
    """Apply the service's migrations; 0 when its database is at this code's head."""
    import asyncio

    from pydantic_settings import BaseSettings

    from gameplane.kit import migrate as kit_migrate
    from gameplane.kit.db import Database
    from gameplane.kit.settings import settings_config

    if not service.database:
        raise UsageError(f"service {service.name!r} owns no database: nothing to migrate")

    class MigrateSettings(BaseSettings):
        """Only what a migration reads (the Job has no keys or endpoints; their checks are the service's)."""

        model_config = settings_config(service.name)
        database_url: str | None = None
        db_wait_seconds: float = 40.0

    settings = MigrateSettings()
    if not settings.database_url:
        raise UsageError(f"{service.env_prefix}DATABASE_URL is not set")
    url = settings.database_url

    async def run() -> str | None:
        db = Database(url, pool_size=1)
        try:
            await db.wait_reachable(settings.db_wait_seconds)
        finally:
            await db.dispose()
        await kit_migrate.upgrade_async(service.module, url)
        return await kit_migrate.current_revision(url)

    revision = asyncio.run(run())
    print(f"{PROG} migrate: {service.name} is at revision {revision}", file=sys.stderr, flush=True)
    return 0


def reload(service: catalog.Service, directory: Path) -> int:
    """Run the service as a child and restart it on every change of a .py file under `directory`."""
    from watchfiles import PythonFilter, run_process
    from watchfiles.main import FileChange

    def changed(changes: set[FileChange]) -> None:
        paths = sorted({Path(p).name for _, p in changes})
        print(f"{PROG}: {len(changes)} change(s) ({', '.join(paths[:5])}): restarting {service.name}",
              file=sys.stderr, flush=True)  # fmt: skip

    # watchfiles turns SIGTERM into a clean stop of the watcher and then stops the child with SIGINT,
    # which uvicorn handles as a graceful shutdown.
    command = shlex.join([sys.executable, "-m", "gameplane", service.name])
    run_process(directory, target=command, target_type="command", watch_filter=PythonFilter(), callback=changed)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["migrate"]:
        return _migrate_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run one gameplane service (or simulator) from the catalogue.",
        epilog=f"services: {', '.join(catalog.BUILT)}",
    )
    parser.add_argument("service", nargs="?", help="service name (default: $GP_SERVICE)")
    parser.add_argument("--reload", metavar="DIR", type=Path,
                        help="restart the service when a .py file under DIR changes (dev clusters)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        service = resolve(args.service or os.environ.get("GP_SERVICE"))
        if args.reload is not None and not args.reload.is_dir():
            raise UsageError(f"--reload {args.reload}: not a directory")
    except UsageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return USAGE_EXIT
    if args.reload is not None:
        return reload(service, args.reload)
    run(service)
    return 0


def _migrate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} migrate",
                                     description="Bring one service's database to this release's head, then exit.")
    parser.add_argument("service", nargs="?", help="service name (default: $GP_SERVICE)")
    args = parser.parse_args(argv)
    try:
        return migrate(resolve(args.service or os.environ.get("GP_SERVICE")))
    except UsageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return USAGE_EXIT


if __name__ == "__main__":
    sys.exit(main())
