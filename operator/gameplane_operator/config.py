"""Operator settings: command-line flags with GAMEPLANE_OPERATOR_* environment fallbacks."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .values import Defaults

GROUP = "gameplane.io"
VERSION = "v1alpha1"
PLURAL = "gamingplatforms"
FIELD_MANAGER = "gameplane-operator"
PAUSE_ANNOTATION = "gameplane.io/paused"
HASH_ANNOTATION = "gameplane.io/applied-hash"
PLATFORM_LABEL = "gameplane.io/platform"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"


def _default_chart() -> Path:
    # In a source checkout the charts sit next to operator/; the image copies them to /charts.
    here = Path(__file__).resolve().parents[2] / "charts" / "gameplane"
    return here if here.is_dir() else Path("/charts/gameplane")


def _flag(value: str) -> bool:
    """An environment switch: true/1/yes/on (any case) is on, anything else off."""
    return value.strip().lower() in ("1", "true", "yes", "on")


def _default_helm() -> str:
    return shutil.which("helm") or "helm"


@dataclass
class Config:
    chart: Path = field(default_factory=lambda: Path(os.environ.get("GAMEPLANE_OPERATOR_CHART") or _default_chart()))
    helm: str = field(default_factory=lambda: os.environ.get("GAMEPLANE_OPERATOR_HELM") or _default_helm())
    workers: int = field(default_factory=lambda: int(os.environ.get("GAMEPLANE_OPERATOR_WORKERS", "4")))
    # A safety net only: children's watch events drive reconciles, this catches anything missed.
    resync_seconds: float = field(
        default_factory=lambda: float(os.environ.get("GAMEPLANE_OPERATOR_RESYNC_SECONDS", "600"))
    )
    # Coalesce bursts of child events (a rollout emits dozens) into one reconcile.
    debounce_seconds: float = field(
        default_factory=lambda: float(os.environ.get("GAMEPLANE_OPERATOR_DEBOUNCE_SECONDS", "0.3"))
    )
    metrics_port: int = field(default_factory=lambda: int(os.environ.get("GAMEPLANE_OPERATOR_METRICS_PORT", "0")))
    metrics_host: str = field(default_factory=lambda: os.environ.get("GAMEPLANE_OPERATOR_METRICS_HOST", "0.0.0.0"))
    kubeconfig: str | None = field(default_factory=lambda: os.environ.get("KUBECONFIG") or None)
    # Images of the development backends for platforms that do not choose (operator chart:
    # platformDefaults.*); empty means the gameplane chart's own defaults.
    postgres_image: str = field(default_factory=lambda: os.environ.get("GAMEPLANE_OPERATOR_POSTGRES_IMAGE", ""))
    nats_image: str = field(default_factory=lambda: os.environ.get("GAMEPLANE_OPERATOR_NATS_IMAGE", ""))
    # The service image of platforms that do not choose one (platformDefaults.image.*).
    image_repository: str = field(default_factory=lambda: os.environ.get("GAMEPLANE_OPERATOR_IMAGE_REPOSITORY", ""))
    image_tag: str = field(default_factory=lambda: os.environ.get("GAMEPLANE_OPERATOR_IMAGE_TAG", ""))
    # Development only (platformDefaults.devReload): every platform's services run with --reload.
    dev_reload: bool = field(default_factory=lambda: _flag(os.environ.get("GAMEPLANE_OPERATOR_DEV_RELOAD", "")))

    def defaults(self) -> Defaults:
        return Defaults(
            postgres_image=self.postgres_image,
            nats_image=self.nats_image,
            image_repository=self.image_repository,
            image_tag=self.image_tag,
            dev_reload=self.dev_reload,
        )
