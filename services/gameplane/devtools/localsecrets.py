"""The secrets of a local platform, kept where its developer (and only they) can read them.

`gameplane up` makes fresh secrets every run (nothing signed by a previous run stays valid) and
writes them, with the run's URLs, to `<data dir>/secrets.json`, mode 0600. The CLI commands aimed
at a local platform (`gameplane providers conformance`, `gameplane wallet reconcile`) read it, so
they work against `make run` without copying a secret by hand.

    {"service_token_secret": ..., "player_token_secret": ...,
     "providers": {"rgs": {"dialect": "canonical", "secret": ...}},
     "services": {"gateway": "http://127.0.0.1:8000", ...}, "databases": {"wallet": "postgresql+asyncpg://..."}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "secrets.json"
# Where `gameplane up` (and so `make run`) keeps its data unless told otherwise.
DEFAULT_DATA_DIR = Path(".gameplane")
DATA_DIR_ENV = "GAMEPLANE_DATA_DIR"


def path(data_dir: Path | None = None) -> Path:
    return (data_dir or Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)) / FILE_NAME


def write(data_dir: Path, secrets: dict[str, Any]) -> Path:
    """Replace the file atomically; it is created 0600 (never readable by others, not even briefly)."""
    target = path(data_dir)
    tmp = target.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask or an older file said
        os.write(fd, json.dumps(secrets, indent=2).encode())
    finally:
        os.close(fd)
    os.replace(tmp, target)
    return target


def read(data_dir: Path | None = None) -> dict[str, Any]:
    """The secrets of the local platform, or {} when there is none (not started here)."""
    try:
        data = json.loads(path(data_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
