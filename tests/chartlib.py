"""A rendered container's environment as the kubelet builds it: ConfigMap envFrom first, then the
literal values with $(VAR) expansion; Secret references get values from `secret(key)` (tests have
no Secrets to read)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


def container_env(container: dict[str, Any], configmaps: dict[str, dict[str, str]],
                  secret: Callable[[str], str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
        elif "secretKeyRef" in item.get("valueFrom", {}):
            env[item["name"]] = secret(item["valueFrom"]["secretKeyRef"]["key"])
    return env
