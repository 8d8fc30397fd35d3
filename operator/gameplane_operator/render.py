"""Render the gameplane chart with the `helm` binary (`helm template`), never by hand.

Renders are cached by the exact inputs, so the many reconciles triggered by child events cost one
dictionary lookup instead of a helm process each.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import Config


class RenderError(RuntimeError):
    """helm refused the values (schema) or a template failed; the message is helm's."""


@dataclass(frozen=True)
class Capabilities:
    """What `helm template` would learn from a live cluster (it has none): version and APIs."""

    kube_version: str
    api_versions: tuple[str, ...]

    def has(self, api: str) -> bool:
        return api in self.api_versions


class Renderer:
    def __init__(self, config: Config, cache_size: int = 128) -> None:
        self._config = config
        self._cache: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._cache_size = cache_size
        self._home = Path(tempfile.mkdtemp(prefix="gameplane-helm-"))
        atexit.register(self.close)  # also when kopf stops without running cleanup handlers
        self.renders = 0  # helm processes actually run (for metrics and tests)

    def close(self) -> None:
        shutil.rmtree(self._home, ignore_errors=True)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # helm writes caches under $HOME; keep them in a private temporary directory.
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[var] = str(self._home / var.lower())
        return env

    async def render(
        self, release: str, namespace: str, values: dict[str, Any], caps: Capabilities
    ) -> list[dict[str, Any]]:
        key_src = json.dumps([release, namespace, values, caps.kube_version, caps.api_versions], sort_keys=True)
        key = hashlib.sha256(key_src.encode()).hexdigest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        docs = await self._helm_template(release, namespace, values, caps)
        self._cache[key] = docs
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return docs

    async def _helm_template(
        self, release: str, namespace: str, values: dict[str, Any], caps: Capabilities
    ) -> list[dict[str, Any]]:
        # Values hold secrets: pass them through a private file, never on the command line.
        fd, path = tempfile.mkstemp(dir=self._home, suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(values, fh)
            args = [
                self._config.helm, "template", release, str(self._config.chart),
                "--namespace", namespace, "--values", path, "--skip-tests",
                "--kube-version", caps.kube_version,
            ]  # fmt: skip
            for api in caps.api_versions:
                args += ["--api-versions", api]
            proc = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self._env()
            )
            out, err = await proc.communicate()
        finally:
            os.unlink(path)
        self.renders += 1
        if proc.returncode != 0:
            raise RenderError(err.decode(errors="replace").strip() or f"helm exited {proc.returncode}")
        return parse_manifests(out.decode())


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream, without empty documents and helm hooks."""
    docs = []
    for doc in yaml.safe_load_all(text):
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        if "helm.sh/hook" in ((doc.get("metadata") or {}).get("annotations") or {}):
            continue  # hooks belong to `helm install/test`, not to a reconciled platform
        docs.append(doc)
    return docs
