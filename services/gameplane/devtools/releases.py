"""Earlier releases of gameplane's own code, taken from git, run beside the current code: the tests
of safe upgrades (docs/upgrades.md) play the previous release's wallet against the schema of this
one, alone and in a rolling update next to the new wallet.

The repository has no release tags yet, so the previous release is pinned here by commit: main as
it was when issue 13 began. Tag releases and move PREVIOUS_RELEASE with each one."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import jwt

import gameplane
from gameplane.devtools.process import ServiceProcess

PREVIOUS_RELEASE = "9cde51e4ebe7c4893840960da0b7dba6bc549e32"
# The last commit before wallet migration 0004, which gave wallet_fast_bet/_win a house account id
# where this code passes a shard number: the hazard the versioning rule exists for.
BEFORE_0004 = "005a5ba420a1b9cb88ef4d1481a7bce391ac3736"


def source_root() -> Path | None:
    """The git work tree this package is imported from; None for an installed wheel."""
    here = Path(gameplane.__file__).resolve().parent
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True,
                             check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(top) if (Path(top) / "services" / "gameplane").is_dir() else None


def missing(*commits: str) -> str | None:
    """Why these commits cannot be read here (None when they can): not a git checkout, or a
    shallow clone without them."""
    root = source_root()
    if root is None:
        return "not a git checkout of gameplane: earlier releases come from git"
    for commit in commits:
        if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=root,
                          capture_output=True).returncode != 0:
            return f"commit {commit[:12]} is not in this clone (shallow? `git fetch --unshallow`)"
    return None


def extract(commit: str, dest: Path) -> Path:
    """The `gameplane` package of `commit`, written under dest; returns the PYTHONPATH entry that makes
    `import gameplane` load it (ahead of the editable install of the current code)."""
    root = source_root()
    if root is None:
        raise FileNotFoundError("not a git checkout of gameplane: earlier releases cannot be read")
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", commit, "services/gameplane"], cwd=root, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "services"


def hs256_service_token(secret: str, issuer: str, audience: str, ttl: int = 600) -> str:
    """A service token as the previous release mints and checks them (one shared HS256 secret)."""
    now = int(time.time())
    return jwt.encode({"iss": issuer, "aud": audience, "iat": now, "exp": now + ttl, "typ": "service"}, secret,
                      algorithm="HS256")


class WalletProcess(ServiceProcess):
    """`python -m gameplane.wallet` as a process of its own, of the current code or (pythonpath) of
    an extracted release; it never migrates: the schema is the test's to set."""

    def __init__(self, database_url: str, nats_url: str, log: Path, port: int, *, secret: str,
                 pythonpath: Path | None = None, **settings: str) -> None:
        super().__init__("wallet", {"DATABASE_URL": database_url, "NATS_URL": nats_url,
                                    "SERVICE_TOKEN_SECRET": secret, "MIGRATE_ON_START": "false",
                                    "LOG_LEVEL": "WARNING", **settings},
                         log, port=port, pythonpath=pythonpath, cwd=log.parent)

    async def fast_path_served(self) -> float:
        """Bets and wins this process answered on the SQL fast path (its Prometheus counter)."""
        async with httpx.AsyncClient(timeout=5.0) as c:
            text = (await c.get(self.url + "/metrics")).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("gameplane_wallet_fast_path_total{") and 'outcome="served"' in line)
