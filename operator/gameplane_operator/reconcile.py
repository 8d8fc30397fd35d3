"""One reconcile of one GamingPlatform: render, apply what differs, prune what is gone.

The order of work, and why:
1. values from the spec (values.py) and the platform's generated keys (read back, never rotated);
2. `helm template` of the umbrella chart (render.py) with the cluster's version and optional APIs;
3. one list per child kind, selected by the platform label: the live state to compare with;
4. server-side apply of each object that is missing or differs; nothing else is written;
5. delete live children the render no longer contains (a disabled service, a dropped HPA).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets as pysecrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import desired as d
from .config import HASH_ANNOTATION, MANAGED_BY_LABEL, PLATFORM_LABEL
from .identities import service_keys, trusted_keys
from .kube import CUSTOM_METRICS, Kube
from .render import Capabilities, Renderer, RenderError
from .status import Outcome
from .values import MANAGED_BY, SECRETS_SUFFIX, Defaults, chart_values, enabled_services

log = logging.getLogger(__name__)

# Applied first to last: what Pods reference exists before the Pods do.
KIND_ORDER = {
    k: i
    for i, k in enumerate(
        ["Secret", "ConfigMap", "ServiceAccount", "Service", "NetworkPolicy", "StatefulSet", "Job", "Deployment"]
    )
}
SECRET_KEYS = ("postgres-password",)


@dataclass
class Applied:
    applied: int
    pruned: int
    rendered: list[d.Obj]
    caps: Capabilities
    drifted: list[str] = field(default_factory=list)  # kinds of the objects put back after drift

    def hashes(self) -> dict[d.Key, str]:
        """What this reconcile left: each object's applied-hash (the next one tells drift by it)."""
        return {d.key(o): o["metadata"]["annotations"][HASH_ANNOTATION] for o in self.rendered}


class StageError(Exception):
    """A reconcile failed at `stage` (metrics.STAGES); the cause is chained."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


@contextlib.contextmanager
def failing_as(name: str) -> Iterator[None]:
    try:
        yield
    except StageError:
        raise
    except Exception as exc:
        raise StageError(name, exc) from exc


async def platform_secrets(kube: Kube, namespace: str, name: str) -> dict[str, str]:
    """The platform's keys as they are in its Secret, with any missing one newly generated."""
    live = await kube.get("v1", "Secret", namespace, name + SECRETS_SUFFIX)
    data = (live or {}).get("data") or {}
    out = {}
    for k in SECRET_KEYS:
        out[k] = base64.b64decode(data[k]).decode() if k in data else pysecrets.token_urlsafe(36)
    return out


def _owned_by(obj: d.Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def wants_custom_metrics(spec: dict[str, Any]) -> bool:
    """Some service's autoscaling asks for a requests-per-second target (a Pods metric)."""
    return any(((svc.get("autoscaling") or {}).get("rpsTarget") or 0) > 0 for svc in spec.get("services") or [])


async def apply_platform(
    kube: Kube, renderer: Renderer, platform: dict[str, Any], defaults: Defaults | None = None, concurrency: int = 6,
    last: dict[d.Key, str] | None = None,
) -> Applied:
    """`last`: the hashes the previous successful reconcile left (Applied.hashes), to tell drift.
    Raises StageError naming the stage that failed."""
    meta = platform["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    spec = platform.get("spec") or {}
    with failing_as("other"):  # reads of what the render needs: the API server is unreachable or refuses
        caps = await kube.capabilities()
        if wants_custom_metrics(spec) and CUSTOM_METRICS not in caps.api_versions:
            # The cached probe may predate an adapter installed since: ask again (at most every 10 s)
            # rather than render the HPA without its requests-per-second metric until the resync.
            caps = await kube.capabilities(max_age=10.0)
        keys = await platform_secrets(kube, ns, name)
        identities = await service_keys(kube, ns, name, enabled_services(spec))
        trusted = await trusted_keys(kube, ns, name)
    with failing_as("render"):
        values = chart_values(name, spec, keys, defaults, identities, trusted)
        rendered = await renderer.render(name, ns, values, caps)
        want = sorted(d.prepare(rendered, platform), key=lambda o: KIND_ORDER.get(o["kind"], 99))

    selector = f"{PLATFORM_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
    with failing_as("other"):
        kinds = kube.served_child_kinds()
        listed = await asyncio.gather(*(kube.list(av, kind, ns, selector) for av, kind in kinds))
    live = {d.key(o): o for items in listed for o in items}

    gate = asyncio.Semaphore(concurrency)

    async def apply_one(obj: d.Obj) -> None:
        async with gate:
            await kube.apply(obj)

    changed = [o for o in want if not d.up_to_date(live.get(d.key(o)), o)]
    drifted = [o["kind"] for o in changed if d.drifted(live.get(d.key(o)), o, (last or {}).get(d.key(o)))]
    # Dependencies first (Secrets, ConfigMaps ...), then the workloads, each group in parallel.
    first = [o for o in changed if KIND_ORDER.get(o["kind"], 99) < KIND_ORDER["StatefulSet"]]
    rest = [o for o in changed if o not in first]
    with failing_as("apply"):
        for group in (first, rest):
            await asyncio.gather(*(apply_one(o) for o in group))

    wanted = {d.key(o) for o in want}
    stale = [o for k, o in live.items() if k not in wanted and _owned_by(o, uid)]
    with failing_as("prune"):
        await asyncio.gather(
            *(kube.delete(o["apiVersion"], o["kind"], ns, o["metadata"]["name"]) for o in stale)
        )
    if changed or stale:
        log.info("platform %s/%s: applied %d (%d after drift), pruned %d", ns, name, len(changed), len(drifted),
                 len(stale))  # fmt: skip
    return Applied(applied=len(changed), pruned=len(stale), rendered=want, caps=caps, drifted=drifted)


def monitoring_outcome(spec: dict[str, Any], caps: Capabilities) -> tuple[bool, str, str]:
    mon = spec.get("monitoring") or {}
    wanted = [k for k in ("serviceMonitor", "prometheusRules") if mon.get(k, True)]
    if not wanted:
        return (True, "Disabled", "ServiceMonitors and PrometheusRules are turned off in spec.monitoring")
    if caps.has("monitoring.coreos.com/v1/ServiceMonitor"):
        labels = mon.get("labels") or {}
        suffix = f" with labels {labels}" if labels else ""
        return (True, "PrometheusOperator", f"{' and '.join(wanted)} created{suffix}")
    return (
        False,
        "PrometheusOperatorMissing",
        "monitoring.coreos.com/v1 is not served; Pods carry prometheus.io/scrape annotations instead",
    )


async def reconcile(
    kube: Kube, renderer: Renderer, platform: dict[str, Any], defaults: Defaults | None = None,
    last: dict[d.Key, str] | None = None,
) -> tuple[Outcome, Applied | None]:
    spec = platform.get("spec") or {}
    try:
        with failing_as("other"):  # anything outside the named stages (comparing, a bug of ours)
            applied = await apply_platform(kube, renderer, platform, defaults, last=last)
    except StageError as exc:
        if isinstance(exc.cause, RenderError):
            return Outcome(False, "RenderFailed", str(exc.cause)[:1000], stage=exc.stage), None
        # the API refused an object (or could not be read): report it truthfully, retry later
        log.error("reconcile of %s failed at %s", platform["metadata"]["name"], exc.stage, exc_info=exc.cause)
        message = f"{type(exc.cause).__name__}: {str(exc.cause)[:900]}"
        return Outcome(False, "ApplyFailed", message, stage=exc.stage), None
    # A stable message: the per-reconcile counts go to Events, so an unchanged platform keeps an
    # identical status (and costs no status write).
    msg = f"{len(applied.rendered)} objects in sync"
    monitoring = monitoring_outcome(spec, applied.caps)
    return Outcome(True, "Applied", msg, applied.applied, applied.pruned, monitoring), applied
