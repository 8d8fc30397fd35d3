"""The umbrella chart's development PostgreSQL gives each service its own role, which reaches only
its own database. The init script and the services' DSNs are rendered by the real `helm` and run
against a real PostgreSQL that checks passwords (scram-sha-256) as the chart's image does."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from chartlib import helm

from gameplane.devtools.infra import HOST, EmbeddedPostgres, postgres_bin_dir
from gameplane.kit import migrate

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "server-password-for-the-test"


def _render() -> list[dict[str, Any]]:
    out = subprocess.run([str(helm()), "template", "p", "charts/gameplane", "-n", "casino",
                          "--set", f"secrets.postgresPassword={PASSWORD}"],
                         capture_output=True, text=True, cwd=REPO, timeout=120, check=True)  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def chart() -> tuple[str, dict[str, str]]:
    docs = _render()
    init = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "p-postgres-init")
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "p-secrets")
    urls = {k.removeprefix("database-url-"): v for k, v in secret["stringData"].items()
            if k.startswith("database-url-")}
    (script,) = init["data"].values()
    return script, urls


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pg_template_cache: Path,
           chart: tuple[str, dict[str, str]]) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("devpg"), template_cache=pg_template_cache)
    pg.start()
    # As the chart's image: passwords over TCP for everyone but the superuser the test drives it with.
    (pg.pgdata / "pg_hba.conf").write_text(
        f"local all all trust\nhost all postgres {HOST}/32 trust\nhost all all {HOST}/32 scram-sha-256\n")
    pg.psql("SELECT pg_reload_conf()")
    script, _ = chart
    env = {**os.environ, "PATH": f"{postgres_bin_dir()}:{os.environ['PATH']}", "PGHOST": HOST,
           "PGPORT": str(pg.port), "POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": PASSWORD}
    # The image's entrypoint sources the script with /bin/sh.
    subprocess.run(["/bin/sh", "-eu", "-c", script], env=env, check=True, capture_output=True, timeout=120)
    yield pg
    pg.stop()


def _local(url: str, port: int, database: str) -> str:
    """The rendered DSN pointed at the test server, as the chart appends the database name."""
    return re.sub(r"@[^/]+$", f"@{HOST}:{port}", url) + f"/{database}"


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def test_the_chart_renders_one_role_per_service_with_a_database(chart: tuple[str, dict[str, str]]) -> None:
    _, urls = chart
    assert set(urls) == {"players", "wallet", "games", "sessions", "payments", "bonus", "risk", "affiliates",
                         "analytics"}
    assert all(u.startswith(f"postgresql+asyncpg://gp_{svc}:") for svc, u in urls.items())
    assert len({u.split(":")[2].split("@")[0] for u in urls.values()}) == 9  # nine different passwords


async def test_each_role_reaches_its_own_database(server: EmbeddedPostgres, chart: tuple[str, dict[str, str]]) -> None:
    _, urls = chart
    for svc, url in urls.items():
        conn = await asyncpg.connect(_libpq(_local(url, server.port, f"gp_{svc}")))
        try:
            assert tuple(await conn.fetchrow("SELECT current_user, current_database()")) == (f"gp_{svc}", f"gp_{svc}")
        finally:
            await conn.close()


async def test_the_wallet_role_cannot_connect_to_the_players_database(
        server: EmbeddedPostgres, chart: tuple[str, dict[str, str]]) -> None:
    _, urls = chart
    for database in ("gp_players", "gp_games", "postgres", "template1"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
            await asyncpg.connect(_libpq(_local(urls["wallet"], server.port, database)))
    # Negative control: the database exists and the server lets its owner in.
    conn = await asyncpg.connect(_libpq(_local(urls["players"], server.port, "gp_players")))
    await conn.close()


async def test_a_role_password_does_not_open_another_role(server: EmbeddedPostgres,
                                                           chart: tuple[str, dict[str, str]]) -> None:
    _, urls = chart
    stolen = urls["wallet"].replace("gp_wallet:", "gp_players:", 1)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(_libpq(_local(stolen, server.port, "gp_players")))


async def test_a_service_migrates_its_database_as_its_own_role(server: EmbeddedPostgres,
                                                                chart: tuple[str, dict[str, str]]) -> None:
    _, urls = chart
    await migrate.upgrade_async("gameplane.wallet", _local(urls["wallet"], server.port, "gp_wallet"))
    owner = server.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'outbox'", database="gp_wallet")
    assert owner.strip() == "gp_wallet"
