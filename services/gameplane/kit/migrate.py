"""Alembic migrations per service: applied at start under a Postgres advisory lock (`gameplane up`,
tests), or once per release by `python -m gameplane migrate <service>` (the chart's migration Job),
the pods then waiting until their database is at their code's head (docs/upgrades.md).

Each service keeps `migrations/env.py` (two lines calling `run_env`) and `migrations/versions/`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from importlib import resources

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection

from gameplane.kit.db import NAMING, add_kit_tables, create_engine


def alembic_config(service_package: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", f"{service_package}:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["lock_key"] = zlib.crc32(service_package.encode())
    return cfg


def upgrade(service_package: str, url: str, revision: str = "head") -> None:
    """Blocking; run it in a thread from async code (Alembic drives its own event loop)."""
    command.upgrade(alembic_config(service_package, url), revision)


async def upgrade_async(service_package: str, url: str) -> None:
    await asyncio.to_thread(upgrade, service_package, url)


log = logging.getLogger(__name__)


class SchemaBehind(RuntimeError):
    """The database is at an older revision than this code's head: its migrations have not run."""


async def current_revision(url: str) -> str | None:
    """The database's Alembic revision; None before the first migration."""
    engine = create_engine(url, poolclass=pool.NullPool)  # the DSN's TLS settings too
    try:
        async with engine.connect() as conn:
            exists = (await conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL"))).scalar()
            if not exists:
                return None
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    finally:
        await engine.dispose()


def schema_ready(service_package: str, revision: str | None) -> bool:
    """Whether code of this head may serve on a database at `revision`: its head, or a revision it
    does not know, which a later release's migration wrote (expand only, so this code still fits:
    the previous release's pods serve on during a rolling update)."""
    script = ScriptDirectory.from_config(alembic_config(service_package, "postgresql://unused"))
    if revision is None:
        return False
    known = {r.revision for r in script.walk_revisions()}
    return revision == script.get_current_head() or revision not in known


async def wait_for_schema(service_package: str, url: str, timeout: float, interval: float = 1.0) -> None:
    """Wait until the release's migration (the chart's Job) has brought the database to this code's
    head; SchemaBehind after `timeout` seconds, so the pod restarts and tries again."""
    deadline = time.monotonic() + timeout
    while True:
        revision = await current_revision(url)
        if schema_ready(service_package, revision):
            return
        if time.monotonic() >= deadline:
            head = ScriptDirectory.from_config(alembic_config(service_package, "postgresql://unused")).get_current_head()
            raise SchemaBehind(f"{service_package}: the database is at revision {revision}, this code needs {head}; "
                               f"the release's migration job (python -m gameplane migrate) has not run or failed")
        log.info("%s: database at revision %s, waiting for the migration job", service_package, revision)
        await asyncio.sleep(interval)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    lock_key = int(config.attributes.get("lock_key", 0))

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Connection) -> None:
        # Replicas start together; the advisory lock makes the second one wait, then find nothing to do.
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key})
        try:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
            connection.commit()

    async def run_async() -> None:
        engine = create_engine(url, poolclass=pool.NullPool)  # the DSN's TLS settings, as every pool
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())


def create_kit_tables() -> None:
    """Call from a service's first migration: creates the outbox and processed_events tables."""
    from alembic import op

    md = MetaData(naming_convention=NAMING)
    add_kit_tables(md)
    md.create_all(op.get_bind())


# Outbox v2: the relay deletes what JetStream acknowledged (it used to mark rows published and keep
# them forever). Idempotent, because a database created after this change already has the shape.
_OUTBOX_V2 = (
    "DO $$ BEGIN "
    "IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = 'outbox' AND column_name = 'published_at') THEN "
    "DELETE FROM outbox WHERE published_at IS NOT NULL; "
    "ALTER TABLE outbox DROP COLUMN published_at; "
    "END IF; END $$",
    "DROP INDEX IF EXISTS ix_outbox_unpublished",
    "ALTER TABLE outbox DROP CONSTRAINT IF EXISTS uq_outbox_id",
)


_OUTBOX_V1 = (
    "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS published_at timestamptz",
    "ALTER TABLE outbox ADD CONSTRAINT uq_outbox_id UNIQUE (id)",
    "CREATE INDEX IF NOT EXISTS ix_outbox_unpublished ON outbox (seq) WHERE published_at IS NULL",
)


def _run_all(statements: list[str] | tuple[str, ...]) -> None:
    """Inside a migration: each statement as the driver gets it (no bind-parameter parsing)."""
    from alembic import op

    bind = op.get_bind()
    for stmt in statements:
        bind.exec_driver_sql(stmt)


def outbox_v2() -> None:
    """Call from one migration per service (after create_kit_tables' migration)."""
    _run_all(_OUTBOX_V2)


def outbox_v1() -> None:
    """outbox_v2's downgrade: the old shape back (published rows are gone either way)."""
    _run_all(_OUTBOX_V1)


def sql_statements(source: str) -> list[str]:
    """Split a SQL script into statements: a `;` ending a line ends one, except inside a
    dollar-quoted body ($$ ... $$). Comment-only chunks are dropped."""
    chunks: list[list[str]] = [[]]
    quoted = False
    for line in source.splitlines():
        chunks[-1].append(line)
        if line.count("$$") % 2:
            quoted = not quoted
        if not quoted and not line.lstrip().startswith("--") and line.rstrip().endswith(";"):
            chunks.append([])
    return ["\n".join(lines).strip() for lines in chunks
            if any(ln.strip() and not ln.lstrip().startswith("--") for ln in lines)]


def run_sql_file(package: str, name: str) -> None:
    """Call from a migration: run `<package>/sql/<name>` statement by statement (the driver
    prepares each one, so one string may hold only one)."""
    _run_all(sql_statements((resources.files(package) / "sql" / name).read_text()))
