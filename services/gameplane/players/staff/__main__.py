"""`python -m gameplane.players.staff create-admin --username NAME`: the first admin of a platform.

There is no default staff account. Run this once where the players database is reachable (in
Kubernetes: `kubectl exec deploy/<platform>-players -- python -m gameplane.players.staff ...`,
which finds GP_PLAYERS_DATABASE_URL in the pod's environment). The password is read from the
terminal (twice) or, with --password-stdin, from the first line of standard input. The TOTP
secret and its otpauth:// URI are printed once: enrol them in an authenticator app at once.
Refused while an active admin exists, unless --force; audited either way (actor cli:create-admin).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from gameplane.kit import migrate
from gameplane.kit.db import Database
from gameplane.kit.keys import SigningKey
from gameplane.kit.problems import Problem
from gameplane.players.context import PlayersContext
from gameplane.players.passwords import Passwords
from gameplane.players.settings import PlayersSettings
from gameplane.players.staff.accounts import AdminExists, bootstrap_admin
from gameplane.players.staff.schemas import StaffEnrolment


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password for the new admin: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("the passwords differ")
    return first


async def _create(settings: PlayersSettings, username: str, password: str, force: bool) -> StaffEnrolment:
    assert settings.database_url
    await migrate.upgrade_async("gameplane.players", settings.database_url)
    db = Database(settings.database_url, pool_size=1)
    try:
        # The command writes an account and issues no token: it needs no key of players, so a
        # throwaway one fills the context (were it ever to sign, no service would trust it).
        ctx = PlayersContext(db=db, settings=settings, passwords=Passwords(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism,
            settings.argon2_concurrency),
            signing_key=SigningKey.generate())
        return await bootstrap_admin(ctx, username, password, force=force)
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gameplane.players.staff",
                                     description="Staff identities of the players service.")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-admin", help="create the first admin (password + TOTP)")
    create.add_argument("--username", required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.add_argument("--database-url", help="players database (default: GP_PLAYERS_DATABASE_URL)")
    create.add_argument("--force", action="store_true", help="even though an active admin exists (recovery)")
    args = parser.parse_args(argv)

    settings = PlayersSettings(**({"database_url": args.database_url} if args.database_url else {}))
    if not settings.database_url:
        print("no players database: set GP_PLAYERS_DATABASE_URL or pass --database-url", file=sys.stderr)
        return 2
    try:
        enrolled = asyncio.run(_create(settings, args.username, _password(args.password_stdin), args.force))
    except AdminExists as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    except Problem as exc:  # weak password, taken username
        print(f"refused: {exc.title}: {exc.detail or ''}", file=sys.stderr)
        return 1
    except ValueError as exc:  # the username's shape (pydantic)
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"created admin {enrolled.staff.username} ({enrolled.staff.id})")
    print(f"TOTP secret (shown once): {enrolled.totp_secret}")
    print(f"TOTP provisioning URI:    {enrolled.totp_provisioning_uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
