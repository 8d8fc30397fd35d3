"""The secrets of a local platform, kept where its developer (and only they) can read them.

`gameplane up` makes fresh secrets every run (nothing signed by a previous run stays valid) and
writes them, with the run's URLs, to `<data dir>/secrets.json`, mode 0600. The CLI commands aimed
at a local platform (`gameplane providers conformance`, `gameplane wallet reconcile`) read it, so
they work against `make run` without copying a secret by hand.

    {"service_token_secret": ..., "player_token_secret": ...,
     "providers": {"rgs": {"dialect": "canonical", "secret": ..., "api_url": ...}},
     "psps": {"simpsp": {"base_url": "http://127.0.0.1:8101/simpsp", "secret": ..., "api_key": ...}, "cardgw": {...}},
     "services": {"gateway": "http://127.0.0.1:8000", ...}, "databases": {"wallet": "postgresql+asyncpg://..."}}

The PSP credentials are the run's own (fresh random values, never a key printed in this
repository), shared by the PSP simulator, which signs webhooks and checks API keys with them, and
payments, which verifies and calls with them (psp_env).
"""

from __future__ import annotations

import json
import os
import secrets
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


# The simulator's two wire dialects, each connected to payments as a PSP of that name; each
# dialect's merchant API lives under /<dialect> on the simulator (gameplane.simulators.psp.app).
PSP_DIALECTS = ("simpsp", "cardgw")


def psp_credentials(simulator_url: str) -> dict[str, dict[str, str]]:
    """Fresh credentials of every simulated PSP for one local run: {name: {base_url, secret, api_key}},
    `base_url` being that dialect's API on the simulator at `simulator_url` (what payments' adapter calls)."""
    root = simulator_url.rstrip("/")
    return {name: {"base_url": f"{root}/{name}", "secret": secrets.token_hex(32),
                   "api_key": f"{name}_{secrets.token_hex(16)}"}
            for name in PSP_DIALECTS}


def psp_env(psps: dict[str, dict[str, str]], gateway_url: str) -> dict[str, dict[str, str]]:
    """The environment that gives payments and the PSP simulator the same credentials (dev only).

    payments: GP_PAYMENTS_PSPS ({name: {base_url, secret, api_key}}) and
    GP_PAYMENTS_PUBLIC_URL (players come back to the gateway). The simulator: GP_PSP_<NAME>_SECRET
    and GP_PSP_<NAME>_API_KEY per dialect, its one documented form (docs/integration/payments.md);
    it sends its webhooks to the gateway's /webhooks/payments/<name> by itself, from its
    GP_PSP_ENDPOINTS."""
    simulator: dict[str, str] = {}
    for name, cfg in psps.items():
        simulator[f"GP_PSP_{name.upper()}_SECRET"] = cfg["secret"]
        simulator[f"GP_PSP_{name.upper()}_API_KEY"] = cfg["api_key"]
    # No GP_PAYMENTS_DEV_MODE: these secrets are fresh, payments checks them as in a deployment.
    return {"payments": {"GP_PAYMENTS_PSPS": json.dumps(psps), "GP_PAYMENTS_PUBLIC_URL": gateway_url},
            "psp": simulator}
