"""The local infrastructure is real: Postgres answers SQL, NATS keeps JetStream data over restarts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nats
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gameplane.devtools.infra import EmbeddedPostgres, NatsServer, free_port_block, port_is_free, wait_for_port


async def scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def test_new_database_is_reachable_over_tcp_with_asyncpg(new_database: Callable[..., str]) -> None:
    url = new_database("reach")
    assert url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    assert await scalar(url, "SELECT current_database()") == url.rsplit("/", 1)[1]
    assert await scalar(url, "SHOW server_encoding") == "UTF8"
    assert await scalar(url, "SHOW max_connections") == "300"


def test_create_database_is_idempotent_and_drop_removes_it(pg: EmbeddedPostgres) -> None:
    count = "SELECT count(*) FROM pg_database WHERE datname = 'gp_idem'"
    pg.create_database("gp_idem")
    pg.create_database("gp_idem")
    assert pg.psql(count).strip() == "1"
    pg.drop_database("gp_idem")
    pg.drop_database("gp_idem")
    assert pg.psql(count).strip() == "0"


def test_database_names_are_validated(pg: EmbeddedPostgres) -> None:
    with pytest.raises(ValueError):
        pg.create_database('x"; DROP DATABASE postgres; --')


def test_wheel_binaries_are_exposed(pg: EmbeddedPostgres) -> None:
    for name in ("psql", "pgbench", "pg_ctl", "initdb"):
        assert pg.bin(name).is_file()
    with pytest.raises(FileNotFoundError):
        pg.bin("no-such-tool")


def test_existing_cluster_is_reused_and_stop_leaves_no_process(tmp_path: Path, pg_template_cache: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", template_cache=pg_template_cache)
    with server:
        server.psql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        pid = server.pid
        assert pid is not None
        backends = [p.pid for p in psutil.Process(pid).children(recursive=True)]
        assert backends  # checkpointer, walwriter ...
    assert not any(psutil.pid_exists(p) for p in [pid, *backends])
    with server:  # same data dir, new process: initdb must not run again
        assert server.psql("SELECT v FROM kept").strip() == "42"


def test_server_left_by_a_dead_parent_is_replaced(tmp_path: Path, pg_template_cache: Path) -> None:
    orphaned = EmbeddedPostgres(tmp_path / "pg", template_cache=pg_template_cache)
    orphaned.start()
    old_pid = orphaned.pid
    # A second owner of the same data dir (as after `kill -9` of `gameplane up`) takes over.
    successor = EmbeddedPostgres(tmp_path / "pg")
    try:
        successor.start()
        assert successor.pid != old_pid
        assert successor.psql("SELECT 1").strip() == "1"
        assert old_pid is not None and _gone(old_pid)
    finally:
        successor.stop()
        orphaned.stop()  # reaps the zombie


def _gone(pid: int) -> bool:
    """Exited: a zombie counts, as our own child stays one until we reap it."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("hard", [False, True], ids=["graceful", "killed"])
async def test_nats_restart_keeps_port_and_jetstream_data(isolated_nats: NatsServer, hard: bool) -> None:
    nc = await nats.connect(isolated_nats.url)
    js = nc.jetstream()
    await js.add_stream(name="DEVINFRA", subjects=["devinfra.>"])
    await js.publish("devinfra.one", b"1")
    await nc.close()

    url = isolated_nats.url
    isolated_nats.restart(hard=hard)
    assert isolated_nats.url == url

    nc = await nats.connect(isolated_nats.url)
    try:
        info = await nc.jetstream().stream_info("DEVINFRA")
        assert info.state.messages == 1
    finally:
        await nc.close()


def test_nats_stop_frees_its_ports(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    assert server.port is not None and server.monitor_port is not None
    wait_for_port(server.port)
    server.stop()
    assert port_is_free(server.port) and port_is_free(server.monitor_port)


def test_free_port_block_returns_bindable_ports() -> None:
    base = free_port_block([0, 1, 4, 100])
    assert all(port_is_free(base + o) for o in (0, 1, 4, 100))
