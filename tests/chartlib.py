"""Rendering the charts in tests: the real helm, and a rendered container's environment as the
kubelet builds it."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def helm() -> Path:
    """The real helm the cluster tier uses, built from source once and cached. Built here, not only
    checked for: on a cold machine `make test` builds it in the background while the first tiers
    already render charts (the build's lock makes this wait for, or take over, that build)."""
    from hack import controlplane

    try:
        controlplane.build_all(log=False, keys=("helm",))
    except RuntimeError as exc:  # no Go toolchain on this machine
        if os.environ.get("CI"):
            pytest.fail(f"cannot build helm: {exc}")
        pytest.skip(f"LOUD SKIP: cannot build helm: {exc}")
    return controlplane.tool("helm")


def container_env(container: dict[str, Any], configmaps: dict[str, dict[str, str]],
                  secret: Callable[[str], str]) -> dict[str, str]:
    """ConfigMap envFrom first, then the literal values with $(VAR) expansion; Secret references get
    values from `secret(key)` (tests have no Secrets to read)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
        elif "secretKeyRef" in item.get("valueFrom", {}):
            env[item["name"]] = secret(item["valueFrom"]["secretKeyRef"]["key"])
    return env
