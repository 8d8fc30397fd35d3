"""`gameplane up`: the whole platform on this machine, with a real PostgreSQL and a real NATS.

Order of life: lock the data dir, clean up after a killed predecessor, start Postgres and NATS,
create the service databases, start every built service under the supervisor, wait for all
`/readyz`, print the URLs (and one `GAMEPLANE READY {json}` line for programs), then run until
SIGINT/SIGTERM and stop services, NATS and Postgres in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from gameplane import catalog
from gameplane.cli import registry
from gameplane.cli.supervisor import ProcessSpec, Supervisor
from gameplane.devtools import identities, localsecrets
from gameplane.devtools.infra import PG_TEMPLATE_CACHE, EmbeddedPostgres, NatsServer, kill_group, port_is_free

READY_MARKER = "GAMEPLANE READY"


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    base_port: int = registry.DEFAULT_BASE_PORT
    only: list[str] | None = None
    ready_timeout: float = 120.0
    stop_grace: float = 10.0


@dataclass(frozen=True)
class Layout:
    """Where `gameplane up` keeps things inside its data dir."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def hold(self) -> Path:
        return self.root / "hold"

    @property
    def pids(self) -> Path:
        return self.root / "pids.json"

    @property
    def lock(self) -> Path:
        return self.root / "up.lock"

    @property
    def identities(self) -> Path:
        """Every identity's private key (mode 0600): local tools act as payments or the back office."""
        return self.root / identities.FILE_NAME


def run_up(opts: UpOptions, console: Console) -> int:
    layout = Layout(opts.data_dir.absolute())
    layout.logs.mkdir(parents=True, exist_ok=True)
    try:
        services = registry.available(opts.only)
    except ValueError as exc:
        console.print(f"[red]{exc}")
        return 2
    with _exclusive(layout.lock) as locked:
        if not locked:
            console.print(f"[red]another `gameplane up` is running with {layout.root}")
            return 1
        _reap_leftovers(layout.pids, console)
        for stale in layout.hold.glob("*"):  # a hold is meant for one run, never the next
            stale.unlink()
        busy = [f"{s.name} ({registry.port(s, opts.base_port)})" for s in services
                if not port_is_free(registry.port(s, opts.base_port))]
        if busy:
            console.print(f"[red]ports in use: {', '.join(busy)}; try --base-port")
            return 1
        return _run(opts, layout, services, console)


def _run(opts: UpOptions, layout: Layout, services: list[registry.Service], console: Console) -> int:
    pg = EmbeddedPostgres(layout.root / "postgres", log_path=layout.logs / "postgres.log",
                          template_cache=PG_TEMPLATE_CACHE)
    nats = NatsServer(layout.root / "nats", log_path=layout.logs / "nats.log")
    # SIGTERM before the event loop runs must still stop Postgres and NATS: make it a Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    code = 0
    try:
        with console.status("starting postgres and nats"):
            started = time.monotonic()
            pg.start()
            nats.start()
            for s in services:
                if s.database_name:
                    pg.create_database(s.database_name)
        console.print(f"postgres and nats up in {time.monotonic() - started:.1f}s")
        code = asyncio.run(_supervise(opts, layout, services, pg, nats, console))
    except KeyboardInterrupt:
        console.print("interrupted")
    finally:
        # Already shutting down: a second signal must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        nats.stop()
        pg.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    console.print("stopped")
    return code


async def _supervise(
    opts: UpOptions,
    layout: Layout,
    services: list[registry.Service],
    pg: EmbeddedPostgres,
    nats: NatsServer,
    console: Console,
) -> int:
    stop = asyncio.Event()

    def on_event(name: str, message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] [bold]{name}[/]: {message}")

    supervisor = Supervisor(
        _specs(opts, layout, services, pg, nats),
        hold_dir=layout.hold,
        state_file=layout.pids,
        extra_state={"postgres": pg.pid, "nats": nats.pid},
        stop_grace=opts.stop_grace,
        on_event=on_event,
    )

    def on_signal() -> None:
        if stop.is_set():  # the second Ctrl-C: no more waiting for graceful exits
            console.print("killing services")
            supervisor.kill_now()
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    await supervisor.start()
    code = 0
    try:
        ready = await _wait_with_progress(supervisor, console, opts.ready_timeout, stop)
        if ready:
            info = _ready_info(opts, layout, services, pg, nats, supervisor)
            _print_urls(info, console)
            # Plain print, not rich: one unwrapped line that programs (tests, benches) parse.
            print(f"{READY_MARKER} {json.dumps(info)}", flush=True)
            await stop.wait()
        elif not stop.is_set():
            code = 1
            _explain_not_ready(supervisor, layout, console)
    finally:
        console.print(f"stopping services (up to {opts.stop_grace:.0f}s; Ctrl-C again to kill)")
        await supervisor.stop()
    return code


def _specs(
    opts: UpOptions,
    layout: Layout,
    services: list[registry.Service],
    pg: EmbeddedPostgres,
    nats: NatsServer,
) -> list[ProcessSpec]:
    endpoint_map = registry.endpoints(services, opts.base_port)
    # Fresh key pairs and provider key per run: nothing signed by a previous run (tokens) stays valid.
    ids = identities.Identities.generate(tuple(dict.fromkeys(
        [*(s.name for s in services if s.kind == "service"), *identities.NAMES])))
    ids.save(layout.identities)
    # api_url: where games sends the studio's free-spin awards (its own API, signed with the same key)
    providers = {"rgs": {"dialect": "canonical", "secret": secrets.token_hex(32),
                         "api_url": registry.url(catalog.get("rgs"), opts.base_port)}}
    # The simulated PSP and payments share the run's PSP credentials, as the studio and games do.
    gateway_url = registry.url(catalog.get("gateway"), opts.base_port)
    psps = localsecrets.psp_credentials(registry.url(catalog.get("psp"), opts.base_port))
    localsecrets.write(layout.root, {
        "identities": str(layout.identities), "providers": providers, "psps": psps, "services": endpoint_map,
        "databases": {s.name: pg.dsn(s.database_name, local=True) for s in services if s.database_name}})
    # The simulated studio and games share the run's provider key; games runs in dev mode. Payments
    # does not: the run's PSP secrets are fresh, none of them a published development one.
    per_service = {"games": {"GP_GAMES_PROVIDERS": json.dumps(providers), "GP_GAMES_DEV_MODE": "true"},
                   # the player site frames the studio's play page and hears its round messages
                   "rgs": {"GP_RGS_PROVIDER_SECRET": providers["rgs"]["secret"],
                           "GP_RGS_ALLOWED_PARENTS": json.dumps([registry.url(catalog.get("web"), opts.base_port)])},
                   **localsecrets.psp_env(psps, gateway_url)}
    if any(s.name == "web" for s in services):
        # The player site frames the studio's pages and sends players to the PSP's hosted pages,
        # which send them back to the site's cashier (browser-facing addresses: the local ones here).
        web_url = registry.url(catalog.get("web"), opts.base_port)
        per_service["web"] = {"GP_WEB_PUBLIC_URL": web_url,
                              "GP_WEB_GAME_URLS": json.dumps({"rgs": registry.url(catalog.get("rgs"), opts.base_port)}),
                              "GP_WEB_PSP_URLS": json.dumps([registry.url(catalog.get("psp"), opts.base_port)])}
        per_service["payments"] = {**per_service["payments"],
                                   "GP_PAYMENTS_RETURN_URL": f"{web_url}/cashier/return?reference={{reference}}"}
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    specs = []
    for s in services:
        env = registry.service_env(
            s,
            base_port=opts.base_port,
            endpoint_map=endpoint_map,
            database_url=pg.dsn(s.database_name, local=True) if s.database_name else None,
            nats_url=nats.url,
            identity_env=ids.env(s.name) if s.kind == "service" else {},  # simulators are third parties
        )
        specs.append(ProcessSpec(
            name=s.name,
            argv=[sys.executable, "-m", s.module],
            env={**base_env, **env, **per_service.get(s.name, {})},
            log_path=layout.logs / f"{s.name}.log",
            ready_url=f"{registry.url(s, opts.base_port)}/readyz",
        ))
    return specs


async def _wait_with_progress(supervisor: Supervisor, console: Console, timeout: float, stop: asyncio.Event) -> bool:
    deadline = time.monotonic() + timeout
    columns = (SpinnerColumn(), TextColumn("{task.description:<10}"), TextColumn("{task.fields[state]}"),
               TimeElapsedColumn())
    # Without a terminal rich draws nothing live; the per-service events still print as lines.
    with Progress(*columns, console=console, transient=True) as progress:
        tasks = {name: progress.add_task(name, total=1, state="starting") for name in supervisor.children}
        while not stop.is_set():
            for name, st in supervisor.status().items():
                done = st["state"] == "ready"
                progress.update(tasks[name], state=st["state"], completed=1 if done else 0)
            if supervisor.all_ready():
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
    return False


def _ready_info(
    opts: UpOptions,
    layout: Layout,
    services: list[registry.Service],
    pg: EmbeddedPostgres,
    nats: NatsServer,
    supervisor: Supervisor,
) -> dict[str, object]:
    urls = registry.endpoints(services, opts.base_port)
    return {
        "gateway": urls.get("gateway"),
        "psp": _psp_info(urls),
        "services": urls,
        "docs": {name: f"{url}/docs" for name, url in urls.items()},
        "postgres": pg.dsn("postgres", driver=None),
        "databases": {s.name: pg.dsn(s.database_name) for s in services if s.database_name},
        "nats": nats.url,
        "nats_monitor": nats.monitor_url,
        "data_dir": str(layout.root),
        "identities": str(layout.identities),
        "logs": str(layout.logs),
        "hold_dir": str(layout.hold),
        "pid_file": str(layout.pids),
        "secrets_file": str(localsecrets.path(layout.root)),
        "pids": {"supervisor": os.getpid(), "postgres": pg.pid, "nats": nats.pid, "services": supervisor.pids()},
    }


def _psp_info(urls: dict[str, str]) -> dict[str, object] | None:
    """Where a player's browser pays (the simulator's hosted pages) and where the simulator's
    webhooks land (payments, through the gateway's partner route when the gateway runs)."""
    if "psp" not in urls:
        return None
    receiver = urls.get("gateway") or urls.get("payments")
    return {"hosted_pages": f"{urls['psp']}/pay/{{psp_reference}}",
            "webhooks": {d: f"{receiver}/webhooks/payments/{d}" for d in localsecrets.PSP_DIALECTS}
            if receiver else {}}


# The client layer's sites, as the URL table names them.
SITES = {"web": "player site", "backoffice": "back office (staff)"}


def _print_urls(info: dict[str, object], console: Console) -> None:
    table = Table(title="gameplane is up", show_header=True)
    table.add_column("what")
    table.add_column("where", overflow="fold")
    services = info["services"]
    assert isinstance(services, dict)
    for name, what in SITES.items():  # where a person opens them, first
        if name in services:
            table.add_row(what, f"{services[name]}/  (open it in a browser)")
    if info["gateway"]:
        table.add_row("gateway", str(info["gateway"]))
    docs = info["docs"]
    assert isinstance(docs, dict)
    for name, url in docs.items():
        if name not in SITES:
            table.add_row(f"{name} API docs", url)
    psp = info.get("psp")
    if isinstance(psp, dict):
        table.add_row("psp hosted pages", str(psp["hosted_pages"]))
        for dialect, url in psp["webhooks"].items():
            table.add_row(f"{dialect} webhooks to", url)
    table.add_row("postgres", str(info["postgres"]))
    table.add_row("nats", f"{info['nats']}  (monitor {info['nats_monitor']})")
    table.add_row("logs", str(info["logs"]))
    console.print(table)
    console.print("Ctrl-C stops everything.")


def _explain_not_ready(supervisor: Supervisor, layout: Layout, console: Console) -> None:
    for name, st in supervisor.status().items():
        if st["state"] == "ready":
            continue
        console.print(f"[red]{name} not ready ({st['state']}, restarts {st['restarts']}); last log lines:")
        log_path = layout.logs / f"{name}.log"
        lines = log_path.read_text(errors="replace").splitlines()[-20:] if log_path.exists() else []
        console.print("\n".join(lines), markup=False, highlight=False)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    """An advisory lock held for the life of `gameplane up` (released by the kernel on death)."""
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def _reap_leftovers(pid_file: Path, console: Console) -> None:
    """Stop service and NATS processes of a predecessor that was killed (kill -9) mid-run.

    Only processes that still look like ours (command line) are touched: pids get recycled.
    Postgres checks its own pid file when it starts.
    """
    try:
        state = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        return
    # (pid, the command line it must still have; None: any nats-server)
    candidates: list[tuple[int, list[str] | None]] = [
        (int(info["pid"]), list(info.get("argv", [])))
        for info in state.get("services", {}).values() if info.get("pid")
    ]
    if state.get("nats"):
        candidates.append((int(state["nats"]), None))
    for pid, expected in candidates:
        try:
            cmdline = psutil.Process(pid).cmdline()
        except psutil.Error:
            continue
        if cmdline != expected and not (expected is None and cmdline and Path(cmdline[0]).name == "nats-server"):
            continue
        console.print(f"[yellow]stopping leftover process {pid} ({' '.join(cmdline)[:80]}) of a previous run")
        kill_group(pid)
    pid_file.unlink(missing_ok=True)
