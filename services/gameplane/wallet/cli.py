"""`gameplane wallet ...`: operator commands that talk to the wallet database directly."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from gameplane.kit.db import Database
from gameplane.wallet.reconcile import reconcile as run_checks
from gameplane.wallet.schemas import ReconciliationReport

app = typer.Typer(help="The wallet's ledger tools.", no_args_is_help=True, rich_markup_mode=None)


async def _reconcile(url: str) -> ReconciliationReport:
    db = Database(url, pool_size=1)
    try:
        async with db.session() as s:
            return await run_checks(s)
    finally:
        await db.dispose()


@app.command()
def reconcile(
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="GP_WALLET_DATABASE_URL",
        help="postgresql+asyncpg://... of the wallet database [default: the local platform's (`gameplane up`), "
             "from <data-dir>/secrets.json]"),
    data_dir: Path | None = typer.Option(None, help="data dir of the local platform [default .gameplane]"),
    as_json: bool = typer.Option(False, "--json", help="print the full report as JSON"),
) -> None:
    """Check the ledger invariants.

    Every invariant over the whole wallet database; exits 1 on any breach."""
    from gameplane.devtools import localsecrets  # a laptop's file; the image may run without devtools

    database_url = database_url or localsecrets.read(data_dir).get("databases", {}).get("wallet")
    if not database_url:
        typer.echo("no wallet database: pass --database-url (or run next to a running `gameplane up`)", err=True)
        raise typer.Exit(2)
    try:
        report = asyncio.run(_reconcile(database_url))
    except Exception as exc:  # unreachable or not a wallet database: say so, don't dump a traceback
        typer.echo(f"reconciliation could not run: {exc.__class__.__name__}: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        typer.echo(f"checked {report.transactions} transactions, {report.entries} entries, "
                   f"{report.accounts} accounts: {'OK' if report.ok else f'{len(report.breaches)} BREACHES'}")
        for b in report.breaches:
            typer.echo(f"  invariant {b.invariant}: {b.detail}")
    raise typer.Exit(0 if report.ok else 1)
