"""The upgrade rule of docs/upgrades.md, checked on the migrations as written: a SQL function's name,
once a migration has created it, is never created again by a later migration (with or without OR
REPLACE). A change of meaning is a new, versioned name (expand); the old name is only ever dropped
(contract, a release later). Otherwise, during a rolling update, the previous release's pods call
the new body with the old meaning of the arguments, as 0004 once did."""

from __future__ import annotations

import inspect
import re
from importlib import resources

import pytest
from alembic.script import ScriptDirectory

from gameplane import catalog
from gameplane.kit.migrate import alembic_config

_CREATE = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+([A-Za-z_][A-Za-z0-9_.]*)\s*\(", re.IGNORECASE)
_SQL_FILE = re.compile(r"run_sql_file\(\s*['\"]([\w.]+)['\"]\s*,\s*['\"]([\w.-]+)['\"]\s*\)")

# Released before the rule existed, and kept as released (a database of the previous release has run
# it): 0004 gave wallet_fast_bet/_win a house account id where 0002 had a shard number. An upgrade
# that crosses 0004 cannot roll; docs/upgrades.md says so. Nothing may be added here.
GRANDFATHERED = {("gameplane.wallet", "0004", "wallet_fast_bet"), ("gameplane.wallet", "0004", "wallet_fast_win")}

PACKAGES = [f"gameplane.{s.name}" for s in catalog.SERVICES if s.built and s.database]

Chain = list[tuple[str, str]]  # (revision, SQL its upgrade runs), oldest first


def functions_created(sql: str) -> set[str]:
    """Names of the functions a script creates (SQL comments ignored; a statement may break lines)."""
    return {m.lower() for m in _CREATE.findall(re.sub(r"--[^\n]*", "", sql))}


def redefinitions(package: str, chain: Chain) -> set[tuple[str, str, str]]:
    """(package, revision, function) for every function a revision creates that an earlier one created."""
    seen: set[str] = set()
    found = set()
    for revision, sql in chain:
        created = functions_created(sql)
        found |= {(package, revision, name) for name in created & seen}
        seen |= created
    return found


def upgrade_sql(package: str) -> Chain:
    """Each revision's upgrade: its own source (inline SQL) and the sql/ files it runs."""
    script = ScriptDirectory.from_config(alembic_config(package, "postgresql://unused"))
    chain = []
    for rev in reversed(list(script.walk_revisions())):
        source = inspect.getsource(rev.module.upgrade)
        files = [(resources.files(pkg) / "sql" / name).read_text() for pkg, name in _SQL_FILE.findall(source)]
        chain.append((rev.revision, "\n".join([source, *files])))
    return chain


def test_every_service_with_a_database_is_scanned_and_the_wallet_has_sql_functions() -> None:
    assert {"gameplane.wallet", "gameplane.games", "gameplane.players", "gameplane.sessions"} <= set(PACKAGES)
    created = set().union(*(functions_created(sql) for _, sql in upgrade_sql("gameplane.wallet")))
    assert {"wallet_fast_batch_v2", "wallet_fast_bet_v2", "wallet_fast_win_v2", "wallet_fast_batch",
            "wallet_fast_batch_v3", "wallet_fast_bet_v3", "wallet_fast_win_v3",
            "wallet_fast_batch_v4", "wallet_fast_bet_v4", "wallet_fast_win_v4"} <= created


@pytest.mark.parametrize("package", PACKAGES)
def test_no_migration_recreates_a_function_an_earlier_one_created(package: str) -> None:
    found = redefinitions(package, upgrade_sql(package))
    assert found == {g for g in GRANDFATHERED if g[0] == package}, \
        "a migration redefines an existing SQL function: give the new meaning a new name (docs/upgrades.md)"


def test_the_scan_finds_a_redefinition_with_or_without_or_replace() -> None:
    chain = [("0001", "CREATE OR REPLACE FUNCTION f_v1(a int) RETURNS int LANGUAGE sql AS $$ SELECT a $$;"),
             ("0002", "DROP FUNCTION f_v1(int);\ncreate function\n  F_V1 (a bigint) RETURNS int AS $$ SELECT 1 $$;"),
             ("0003", "CREATE FUNCTION f_v2(a bigint) RETURNS int AS $$ SELECT 1 $$; -- CREATE FUNCTION f_v1("),
             ("0004", "-- CREATE OR REPLACE FUNCTION f_v2(a int)\nSELECT 1;")]
    assert redefinitions("p", chain) == {("p", "0002", "f_v1")}
