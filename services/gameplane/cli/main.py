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
from gameplane.cli.loadstats import DEFAULT_MIX, MixError, parse_mix

# Plain help (no rich boxes): it wraps within 80 columns instead of truncating options and defaults.
app = typer.Typer(name="gameplane", help="Run and operate a gameplane platform locally.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80})
# Without a terminal (CI, pipes) rich assumes 80 columns and truncates URLs in tables.
console = Console(width=None if sys.stdout.isatty() else 160)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"gameplane {version('gameplane')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: bool = typer.Option(False, "--version", "-V", callback=_print_version, is_eager=True,
                                  help="Print the version and exit."),
) -> None:
    """gameplane: a Kubernetes-native iGaming platform."""


@app.command()
def up(
    data_dir: Path = typer.Option(Path(".gameplane"), help="PostgreSQL/NATS data, logs and pid file."),
    base_port: int = typer.Option(registry.DEFAULT_BASE_PORT, help="Gateway port; the others follow it."),
    only: str | None = typer.Option(None, help="Comma-separated services to run (default: all built)."),
    ready_timeout: float = typer.Option(120.0, help="Seconds to wait for every /readyz."),
    stop_grace: float = typer.Option(10.0, help="Seconds a service gets to exit after SIGTERM."),
) -> None:
    """Start the whole platform on this machine.

    PostgreSQL, NATS and every built service, each as its own process; prints the URLs once
    everything is ready. Ctrl-C stops all of it."""
    from gameplane.cli.up import UpOptions, run_up  # keeps `gameplane --help` fast

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    opts = UpOptions(data_dir=data_dir, base_port=base_port, only=names, ready_timeout=ready_timeout,
                     stop_grace=stop_grace)
    raise typer.Exit(run_up(opts, console))


@app.command()
def load(
    rate: float = typer.Option(5.0, min=0.1, help="Actions started per second (after sign-up)."),
    duration: float = typer.Option(30.0, min=1, help="Seconds to start actions for."),
    players: int = typer.Option(10, min=1, help="Players registered first; each does one action at a time."),
    mix: str = typer.Option(DEFAULT_MIX, help="Weights of the actions: deposit, play, withdraw."),
    spins: int = typer.Option(5, min=1, help="Spins per play action."),
    stake: int = typer.Option(50, min=1, help="Stake per spin, minor units (a multiple of the game's lines)."),
    deposit: int = typer.Option(5_000, min=1, help="Amount of a deposit, minor units."),
    withdraw: int = typer.Option(1_000, min=1, help="Amount of a withdrawal, minor units."),
    data_dir: Path | None = typer.Option(
        None, help="Data dir of the local platform (`gameplane up`) whose URLs to use [env GAMEPLANE_DATA_DIR; "
                   "default .gameplane]."),
    gateway: str | None = typer.Option(None, help="Gateway URL [default: the local platform's]."),
    rgs: str | None = typer.Option(None, help="RGS simulator URL, where plays spin [default: the local "
                                              "platform's; none: a play with funds fails as no-rgs]."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Put players on a running platform.

    Players register and log in, then deposit (the PSP simulator's hosted page, as a browser),
    play (the RGS simulator) and withdraw, in the mix's proportions at the given rate; a live
    progress display, then counts, errors by status and problem type, and p50/p95 latency per
    action. Exits 1 when any action got a 5xx."""
    from gameplane.cli.load import LoadOptions, run_load, target_from  # keeps `gameplane --help` fast

    try:
        parse_mix(mix)
    except MixError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mix") from None
    try:
        target = target_from(data_dir, gateway, rgs)
    except LookupError as exc:
        raise typer.BadParameter(f"{exc}: start it with `gameplane up` or pass --data-dir",
                                 param_hint="--data-dir") from None
    opts = LoadOptions(rate=rate, duration=duration, players=players, mix=mix, spins=spins, stake=stake,
                       deposit=deposit, withdraw=withdraw)
    summary = run_load(target, opts, as_json=as_json, console=console)
    raise typer.Exit(1 if summary["server_errors"] else 0)


@app.command()
def services(base_port: int = typer.Option(registry.DEFAULT_BASE_PORT)) -> None:
    """List the services and whether each one is built."""
    table = Table("service", "module", "url", "database", "built")
    for s in registry.SERVICES:
        table.add_row(s.name, s.module, registry.url(s, base_port), s.database_name or "-",
                      "yes" if s.built else "[dim]not yet[/]")
    console.print(table)


# --- command groups of other areas: one line each ----------------------------------------------
# e.g. from gameplane.cli.demo import app as demo_app; app.add_typer(demo_app, name="demo")
from gameplane.wallet.cli import app as wallet_app  # noqa: E402

app.add_typer(wallet_app, name="wallet")
from gameplane.simulators.rgs.conformance import app as providers_app  # noqa: E402

app.add_typer(providers_app, name="providers")
