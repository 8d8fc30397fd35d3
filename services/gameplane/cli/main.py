"""The `gameplane` command.

Command groups of other areas (demo, load, providers, wallet ...) live in their own modules
and are mounted at the bottom of this file with one `app.add_typer(...)` line each.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gameplane.cli import registry

app = typer.Typer(name="gameplane", help="Run and operate a gameplane platform locally.",
                  no_args_is_help=True, add_completion=False)
# Without a terminal (CI, pipes) rich assumes 80 columns and truncates URLs in tables.
console = Console(width=None if sys.stdout.isatty() else 160)


@app.callback()
def _root() -> None:
    """gameplane: a Kubernetes-native iGaming platform."""


@app.command()
def up(
    data_dir: Path = typer.Option(Path(".gameplane"), help="PostgreSQL/NATS data, logs and pid file."),
    base_port: int = typer.Option(registry.DEFAULT_BASE_PORT, help="Gateway port; the others follow it."),
    only: str | None = typer.Option(None, help="Comma-separated services to run (default: all built)."),
    ready_timeout: float = typer.Option(120.0, help="Seconds to wait for every /readyz."),
    stop_grace: float = typer.Option(10.0, help="Seconds a service gets to exit after SIGTERM."),
) -> None:
    """Start PostgreSQL, NATS and every built service; Ctrl-C stops all of it."""
    from gameplane.cli.up import UpOptions, run_up  # keeps `gameplane --help` fast

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    opts = UpOptions(data_dir=data_dir, base_port=base_port, only=names, ready_timeout=ready_timeout,
                     stop_grace=stop_grace)
    raise typer.Exit(run_up(opts, console))


@app.command()
def services(base_port: int = typer.Option(registry.DEFAULT_BASE_PORT)) -> None:
    """List the services of the platform and whether each one is built yet."""
    table = Table("service", "module", "url", "database", "built")
    for s in registry.SERVICES:
        table.add_row(s.name, s.module, s.url(base_port), s.database_name or "-",
                      "yes" if s.is_built() else "[dim]not yet[/]")
    console.print(table)


# --- command groups of other areas: one line each ----------------------------------------------
# e.g. from gameplane.cli.demo import app as demo_app; app.add_typer(demo_app, name="demo")
from gameplane.wallet.cli import app as wallet_app  # noqa: E402

app.add_typer(wallet_app, name="wallet")
from gameplane.simulators.rgs.conformance import app as providers_app  # noqa: E402

app.add_typer(providers_app, name="providers")
