"""Shared fixtures: one real PostgreSQL and one real NATS per test session.

Both start lazily (only tests that ask for them pay) and once per session; sub-directory
conftests build on them (`pg`, `nats_server`, `new_database`, `isolated_nats`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from gameplane.devtools.identities import dev_identities
from gameplane.devtools.infra import PG_TEMPLATE_CACHE, EmbeddedPostgres, NatsServer

# Every service built by a test gets its own key of the test identities and trusts all of their
# public keys (GP_<SVC>_SERVICE_KEY / _PUBLIC_KEYS), as `gameplane up` wires its processes; tests
# sign as any caller with `dev_identities()`. A test that needs other keys passes them explicitly.
dev_identities().export()


def _session_temproot() -> Path:
    """A temporary root of this session alone, under /tmp/gameplane-pytest-<uid>/<pid>.

    pytest makes /tmp/pytest-of-<user> private again whenever a session starts and deletes all but
    its three newest directories; either would pull an earlier, still running session's PostgreSQL
    data from under it (the server runs as an unprivileged user that must traverse the path). Roots
    of sessions that have ended are removed here instead."""
    base = Path(tempfile.gettempdir()) / f"gameplane-pytest-{os.getuid()}"
    base.mkdir(mode=0o711, exist_ok=True)  # others may traverse, not list
    for old in base.iterdir():
        if old.name.isdigit() and int(old.name) != os.getpid() and not psutil.pid_exists(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    root = base / str(os.getpid())
    root.mkdir(mode=0o711, exist_ok=True)
    return root


# Read by pytest when the first temporary directory is made, so setting it here is in time.
os.environ["PYTEST_DEBUG_TEMPROOT"] = str(_session_temproot())


@pytest.fixture(scope="session")
def infra_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session directory holding the data of the shared Postgres and NATS."""
    return tmp_path_factory.mktemp("infra")


@pytest.fixture(scope="session")
def pg_template_cache() -> Path:
    """Pass as `EmbeddedPostgres(..., template_cache=...)` when a test needs its own cluster.

    initdb is the slowest part of starting Postgres (~1.5 s); a cached fresh cluster (keyed by
    server version) is copied instead.
    """
    return PG_TEMPLATE_CACHE


@pytest.fixture(scope="session")
def pg(infra_dir: Path, pg_template_cache: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(infra_dir / "postgres", template_cache=pg_template_cache)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_server(infra_dir: Path) -> Iterator[NatsServer]:
    server = NatsServer(infra_dir / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def isolated_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A NATS server of this test alone: for tests that restart or kill it, or need empty streams."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


_db_counter = itertools.count(1)


@pytest.fixture
def new_database(pg: EmbeddedPostgres) -> Callable[..., str]:
    """Factory: `new_database("wallet")` creates a fresh database and returns its asyncpg URL.

    Databases are not dropped afterwards: DROP DATABASE forces a checkpoint (slow), and the
    whole cluster is thrown away with the session's tmp dir anyway.
    """

    def make(prefix: str = "t") -> str:
        name = f"{prefix}_{os.getpid()}_{next(_db_counter)}".lower()
        pg.create_database(name)
        return pg.dsn(name)

    return make
