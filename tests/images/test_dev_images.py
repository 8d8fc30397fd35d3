"""The dev PostgreSQL and NATS images, run the way charts/gameplane runs them (postgres.yaml, nats.yaml)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import asyncpg
import nats
import pytest
from imagelib import SIGTERM_BOUND_S, Docker, Session, free_port, note, wait_for

PASSWORD = "dev-password-1"


@pytest.fixture(scope="module")
def pg_tag(images_session: Session) -> str:
    return str(images_session.built["dev-postgres"].tags[0])


@pytest.fixture(scope="module")
def nats_tag(images_session: Session) -> str:
    return str(images_session.built["dev-nats"].tags[0])


def health(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def test_postgres_contract_of_the_chart(docker: Docker, pg_tag: str, tmp_path: Path) -> None:
    config = docker.inspect(pg_tag)["Config"]
    assert config["User"] == "70:70"
    init = tmp_path / "init"
    init.mkdir()
    (init / "01-databases.sql").write_text("CREATE DATABASE gp_wallet;\nCREATE DATABASE gp_players;\n")
    init.chmod(0o755)
    (init / "01-databases.sql").chmod(0o644)
    port = free_port()
    # As the StatefulSet: uid/gid 70, read-only root, emptyDirs (tmpfs here) for data, socket and /tmp.
    opts = (
        "--user", "70:70", "--read-only",
        "--tmpfs", "/var/lib/postgresql/data:uid=70,gid=70", "--tmpfs", "/var/run/postgresql:uid=70,gid=70",
        "--tmpfs", "/tmp", "--volume", f"{init}:/docker-entrypoint-initdb.d:ro",
        "--env", "POSTGRES_USER=gameplane", "--env", f"POSTGRES_PASSWORD={PASSWORD}",
        "--env", "PGDATA=/var/lib/postgresql/data/pgdata", "--env", f"PGPORT={port}",
    )  # fmt: skip
    with docker.container(pg_tag, opts=opts) as cid:
        # The chart's probe, as it runs it (pg_isready on PATH, TCP to 127.0.0.1).
        probe = ("exec", cid, "pg_isready", "-U", "gameplane", "-h", "127.0.0.1", "-p", str(port))
        wait_for("pg_isready", lambda: docker(*probe, check=False).returncode == 0, logs=lambda: docker.logs(cid))
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="gameplane", password=PASSWORD,
                                     database="gp_wallet")  # fmt: skip
        try:
            names = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
            version = await conn.fetchval("SHOW server_version")
            listen = await conn.fetchval("SHOW listen_addresses")
        finally:
            await conn.close()
        assert {"gp_wallet", "gp_players", "gameplane"} <= names  # the init script ran; POSTGRES_DB defaulted
        assert version.startswith("17.")
        assert listen == "*"
        # Control: password authentication is on (a wrong password is refused over TCP).
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=port, user="gameplane", password="wrong", database="postgres")
        seconds, code = docker.stop_seconds(cid)
    note(f"dev-postgres {version}: stop (STOPSIGNAL SIGINT, fast shutdown) in {seconds:.2f}s")
    assert code == 0 and seconds < SIGTERM_BOUND_S


def test_postgres_refuses_to_initialise_without_password(docker: Docker, pg_tag: str) -> None:
    opts = ("--read-only", "--tmpfs", "/var/lib/postgresql/data:uid=70,gid=70", "--tmpfs", "/tmp")
    r = docker.run(pg_tag, opts=opts, check=False)
    assert r.returncode == 1 and "POSTGRES_PASSWORD must be set" in r.stderr


async def test_nats_with_jetstream_as_the_chart_runs_it(docker: Docker, nats_tag: str) -> None:
    client, monitor = free_port(), free_port()
    args = ("--jetstream", "--store_dir", "/data", "--http_port", str(monitor), "--port", str(client))
    opts = ("--user", "1000:1000", "--read-only", "--tmpfs", "/data:uid=1000,gid=1000")
    with docker.container(nats_tag, *args, opts=opts) as cid:
        url = f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true"  # the chart's readiness probe
        wait_for("nats /healthz", lambda: health(url)[0] == 200, logs=lambda: docker.logs(cid))
        jsz = json.loads(health(f"http://127.0.0.1:{monitor}/jsz")[1])
        assert not jsz.get("disabled") and jsz["config"]["store_dir"].startswith("/data")
        nc = await nats.connect(f"nats://127.0.0.1:{client}")
        try:
            js = nc.jetstream()
            await js.add_stream(name="GPTEST", subjects=["gptest.>"])
            await js.publish("gptest.one", b"hello")
            msg = await js.get_msg("GPTEST", seq=1)
        finally:
            await nc.close()
        assert msg.data == b"hello"  # JetStream stored it in /data
        seconds, code = docker.stop_seconds(cid)
    note(f"dev-nats: SIGTERM to exit {seconds:.2f}s")
    assert code != 137 and seconds < SIGTERM_BOUND_S


def test_nats_without_jetstream_is_told_apart(docker: Docker, nats_tag: str) -> None:
    """Control for the /jsz check above. (The chart's probe query, ?js-enabled-only=true, answers
    200 without JetStream too on nats-server 2.15: it is not the check.)"""
    monitor, client = free_port(), free_port()
    with docker.container(nats_tag, "--http_port", str(monitor), "--port", str(client), opts=("--read-only",)) as cid:
        url = f"http://127.0.0.1:{monitor}"
        wait_for("nats /healthz", lambda: health(url + "/healthz")[0] == 200, logs=lambda: docker.logs(cid))
        assert json.loads(health(url + "/jsz")[1]).get("disabled") is True


def test_dev_images_are_labelled_honestly(docker: Docker, pg_tag: str, nats_tag: str) -> None:
    for tag, title in ((pg_tag, "gameplane-dev-postgres"), (nats_tag, "gameplane-dev-nats")):
        assert tag.startswith("gameplane/dev-")
        labels = docker.inspect(tag)["Config"]["Labels"]
        assert labels["org.opencontainers.image.title"] == title
        assert "development" in labels["org.opencontainers.image.description"]
    version = docker.inspect(nats_tag)["Config"]["Labels"]["org.opencontainers.image.version"]
    assert nats_tag.endswith(":" + version)
