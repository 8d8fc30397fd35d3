"""kopf wiring: GamingPlatform handlers, child indexes and child watches.

- create / update / resume run a full reconcile and make kopf retry it when it fails;
- delete only forgets the platform: its children carry ownerReferences, so the API server's
  garbage collector removes them (no finalizer, so deletion never waits for the operator);
- Deployments, StatefulSets, HPAs and Services of every platform are indexed: status comes from
  the indexes; so are the names and keys (never the values) of Secrets, to tell whether the
  Secrets a platform references exist, and the expiry of the certificates in them (certs.py);
- any change to a child nudges its platform: drift (a deleted object, a hand-scaled Deployment)
  is repaired, and status follows readiness. Status-only changes skip the render-and-apply step;
- a change to a Secret a platform references (created at last, a key added) refreshes its status.

Run with `kopf run -m gameplane_operator.handlers` or `gameplane-operator` (see __main__.py).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import kopf

from . import certs, metrics, refs
from . import faults as drills
from .config import (
    GROUP,
    HASH_ANNOTATION,
    MANAGED_BY_LABEL,
    PAUSE_ANNOTATION,
    PLATFORM_LABEL,
    PLURAL,
    VERSION,
    Config,
)  # fmt: skip
from .desired import Key as Key3
from .kube import Kube, connection_info, load_api_client
from .reconcile import StageError, failing_as, reconcile
from .render import Renderer
from .scheduler import Key, Scheduler
from .status import AutoscalerInfo, EndpointInfo, Outcome, WorkloadInfo, compute, events
from .values import MANAGED_BY, enabled_services

log = logging.getLogger(__name__)
CHILD = {MANAGED_BY_LABEL: MANAGED_BY, PLATFORM_LABEL: kopf.PRESENT}
COMPONENT = "app.kubernetes.io/component"


@dataclass
class Memo:
    """What the last full reconcile of a platform left behind for status-only refreshes."""

    outcome: Outcome
    generation: int  # the metadata.generation that reconcile applied
    dashboards: list[dict[str, str]] = field(default_factory=list)
    ready: bool = False  # the Ready condition the last status computed
    hashes: dict[Key3, str] = field(default_factory=dict)  # what the last successful reconcile applied


@dataclass
class Runtime:
    config: Config
    kube: Kube
    renderer: Renderer
    scheduler: Scheduler
    indexes: dict[str, Any] = field(default_factory=dict)
    memo: dict[Key, Memo] = field(default_factory=dict)
    generations: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    referenced: dict[Key, set[str]] = field(default_factory=dict)  # platform -> Secret names it uses
    certificates: dict[Key, set[tuple[str, str]]] = field(default_factory=dict)  # exported (Secret, key)


RT: Runtime | None = None


def runtime() -> Runtime:
    if RT is None:
        raise kopf.TemporaryError("operator is still starting", delay=1)
    return RT


def _remember_indexes(kwargs: dict[str, Any]) -> None:
    # kopf hands indexes to handlers only; they are live views, so keeping the latest is enough.
    if RT is not None:
        for name in ("gp_workloads", "gp_statefulsets", "gp_autoscalers", "gp_endpoints", "gp_secrets"):
            if name in kwargs:
                RT.indexes[name] = kwargs[name]


# -- login, startup, cleanup -------------------------------------------------------------------------
@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    # One source of credentials for kopf and for our own client: in-cluster, else $KUBECONFIG as
    # read now (the kubernetes library reads $KUBECONFIG once, at import time).
    return kopf.ConnectionInfo(**connection_info(Config().kubeconfig))


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    global RT
    config = Config()
    # Handler logs stay logs: only warnings become Kubernetes Events (Events are API writes).
    settings.posting.level = logging.WARNING
    # Events name the operator, not the framework: `kubectl describe` shows "From gameplane-operator".
    settings.posting.reporting_component = MANAGED_BY
    settings.posting.reporting_instance = os.environ.get("GAMEPLANE_OPERATOR_POD_NAME") or socket.gethostname()
    settings.posting.event_name_prefix = f"{MANAGED_BY}-"
    # Our schema has no status.kopf: kopf keeps its bookkeeping in annotations. Its prefix must not
    # be gameplane.io: kopf ignores every annotation under its storage prefix when it diffs, and the
    # pause annotation (gameplane.io/paused) has to count as a change.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.gameplane.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kopf.gameplane.io", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "gameplane.io/finalizer"
    settings.queueing.worker_limit = max(8, config.workers * 4)
    settings.execution.max_workers = max(4, config.workers * 2)
    kube = Kube(load_api_client(config.kubeconfig))
    await kube.capabilities()
    RT = Runtime(
        config=config,
        kube=kube,
        renderer=Renderer(config),
        scheduler=Scheduler(run_platform, config.workers, config.debounce_seconds, config.resync_seconds),
    )
    if config.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(config.metrics_port, addr=config.metrics_host)
    log.info("gameplane operator started: chart %s, helm %s, %d workers", config.chart, config.helm, config.workers)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    global RT
    if RT is not None:
        await RT.scheduler.close()
        RT.kube.api.close()
        RT.renderer.close()
        RT = None


# -- indexes of children (the truth the status is computed from) --------------------------------
def _platform_key(namespace: str | None, labels: Any) -> Key:
    return (namespace or "", labels[PLATFORM_LABEL])


def _workload(name: str, labels: Any, meta: Any, spec: Any, status: Any, failure: str = "") -> WorkloadInfo:
    """What a Deployment's or StatefulSet's own status says about its readiness."""
    return WorkloadInfo(
        component=labels.get(COMPONENT, name),
        name=name,
        desired=int(spec.get("replicas", 1)),
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        current=int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0),
        failure=failure,
        total=int(status.get("replicas") or 0),
    )


@kopf.index("apps", "v1", "deployments", labels=CHILD)
def gp_workloads(namespace: str | None, name: str, labels: Any, meta: Any, spec: Any, status: Any, **_: Any) -> Any:
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    failure = ""
    if (conds.get("Progressing") or {}).get("reason") == "ProgressDeadlineExceeded":
        failure = conds["Progressing"].get("message", "progress deadline exceeded")
    elif (conds.get("ReplicaFailure") or {}).get("status") == "True":
        failure = conds["ReplicaFailure"].get("message", "replica failure")
    return {_platform_key(namespace, labels): _workload(name, labels, meta, spec, status, failure)}


@kopf.index("apps", "v1", "statefulsets", labels=CHILD)
def gp_statefulsets(namespace: str | None, name: str, labels: Any, meta: Any, spec: Any, status: Any,
                    **_: Any) -> Any:  # fmt: skip
    # The development PostgreSQL: the platform is not ready while it is not.
    return {_platform_key(namespace, labels): _workload(name, labels, meta, spec, status)}


@kopf.index("", "v1", "secrets")
def gp_secrets(namespace: str | None, name: str, body: Any, **_: Any) -> Any:
    # Names and keys: whether a referenced Secret (and its key) exists; of a certificate, when it
    # expires (certs.py). Values stay out.
    return {(namespace or "", name): certs.seen(body.get("data"))}


@kopf.index("autoscaling", "v2", "horizontalpodautoscalers", labels=CHILD)
def gp_autoscalers(namespace: str | None, name: str, labels: Any, spec: Any, status: Any, **_: Any) -> Any:
    info = AutoscalerInfo(
        component=labels.get(COMPONENT, name),
        name=name,
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec.get("maxReplicas", 1)),
        current=int(status.get("currentReplicas") or 0),
        desired=int(status.get("desiredReplicas") or 0),
    )
    return {_platform_key(namespace, labels): info}


@kopf.index("", "v1", "services", labels=CHILD)
def gp_endpoints(namespace: str | None, name: str, labels: Any, spec: Any, **_: Any) -> Any:
    port = next((p.get("port") for p in spec.get("ports") or [] if p.get("name") == "http"), None)
    if port is None:
        return None  # postgres, nats: not services of the platform's API
    url = f"http://{name}.{namespace}.svc:{port}"
    return {_platform_key(namespace, labels): EndpointInfo(component=labels.get(COMPONENT, name), url=url)}


def _by_component(index_name: str, key: Key) -> dict[str, Any]:
    index = runtime().indexes.get(index_name)
    if index is None or key not in index:
        return {}
    return {item.component: item for item in index[key]}


def _secret_seen(namespace: str, name: str) -> certs.SecretSeen | None:
    index = runtime().indexes.get("gp_secrets")
    if index is None or (namespace, name) not in index:
        return None
    return next(iter(index[(namespace, name)]), certs.SecretSeen(frozenset()))


def _secret_keys(namespace: str, name: str) -> frozenset[str] | None:
    found = _secret_seen(namespace, name)
    return None if found is None else found.keys


def _export_expiries(rt: Runtime, key: Key, secret_refs: list[refs.SecretRef]) -> None:
    found = certs.expiries(secret_refs, lambda secret: _secret_seen(key[0], secret))
    for secret, item in rt.certificates.get(key, set()) - set(found):
        metrics.CERT_EXPIRY.remove(key[0], key[1], secret, item)
    for (secret, item), when in found.items():
        metrics.CERT_EXPIRY.labels(platform_namespace=key[0], platform=key[1], secret=secret, key=item).set(when)
    rt.certificates[key] = set(found)


def _backends(spec: dict[str, Any]) -> tuple[str, ...]:
    """The platform's own PostgreSQL and NATS (by component label), when it runs them."""
    out = []
    if (spec.get("database") or {}).get("mode", "embedded") == "embedded":
        out.append("postgres")
    if (spec.get("messaging") or {}).get("mode", "embedded") == "embedded":
        out.append("nats")
    return tuple(out)


# -- one platform: reconcile (full) or status refresh --------------------------------------------
async def run_platform(key: Key, full: bool) -> bool:
    """One pass over one platform; every way it can fail counts in reconcile_errors_total{stage}."""
    try:
        return await _run_platform(key, full)
    except StageError as exc:
        metrics.RECONCILE_ERRORS.labels(stage=exc.stage).inc()
        raise exc.cause from None  # what failed, as before: kopf and the scheduler log it and retry
    except Exception:
        metrics.RECONCILE_ERRORS.labels(stage="other").inc()
        raise


async def _run_platform(key: Key, full: bool) -> bool:
    rt = runtime()
    ns, name = key
    platform = await rt.kube.get_platform(ns, name)
    if platform is None or platform["metadata"].get("deletionTimestamp"):
        _forget(rt, key)
        return True
    metrics.PLATFORMS.set(rt.scheduler.known())
    paused = (platform["metadata"].get("annotations") or {}).get(PAUSE_ANNOTATION) == "true"
    generation = int(platform["metadata"].get("generation") or 0)
    memo = rt.memo.get(key)
    started = time.monotonic()
    applied = pruned = 0
    if paused:
        outcome = memo.outcome if memo else Outcome(True, "Paused", "paused before the first reconcile")
    elif full or memo is None or memo.generation != generation:
        # (A status refresh that finds a newer spec than the last reconcile applied does the reconcile.)
        outcome, result = await reconcile(rt.kube, rt.renderer, platform, rt.config.defaults(),
                                          last=memo.hashes if memo else None)  # fmt: skip
        applied, pruned = outcome.applied, outcome.pruned
        metrics.RECONCILES.labels(reason=outcome.reason).inc()
        metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        if not outcome.ok:
            metrics.RECONCILE_ERRORS.labels(stage=outcome.stage or "other").inc()
        for kind in result.drifted if result else []:
            metrics.DRIFT_CORRECTIONS.labels(kind=kind).inc()
        dashboards = _dashboards(result.rendered, platform) if result else (memo.dashboards if memo else [])
        hashes = result.hashes() if result else (memo.hashes if memo else {})
        memo = rt.memo[key] = Memo(outcome=outcome, generation=generation, dashboards=dashboards, hashes=hashes)
    else:
        outcome = memo.outcome
    with failing_as("status"):
        await _refresh_status(rt, key, platform, paused, memo, outcome, applied, pruned)
    return outcome.ok


async def _refresh_status(rt: Runtime, key: Key, platform: dict[str, Any], paused: bool, memo: Memo | None,
                          outcome: Outcome, applied: int, pruned: int) -> None:  # fmt: skip
    ns, name = key
    spec = platform.get("spec") or {}
    secret_refs = refs.secret_refs(spec)
    rt.referenced[key] = {r.name for r in secret_refs}
    _export_expiries(rt, key, secret_refs)
    faults = await _faults_condition(rt, key, platform, paused)
    status = compute(
        platform=platform,
        services=enabled_services(spec),
        workloads={**_by_component("gp_statefulsets", key), **_by_component("gp_workloads", key)},
        autoscalers=_by_component("gp_autoscalers", key),
        endpoints=_by_component("gp_endpoints", key),
        outcome=outcome,
        paused=paused,
        dashboards=memo.dashboards if memo else [],
        observed_generation=memo.generation if memo else None,
        backends=_backends(spec),
        secrets=refs.resolve(secret_refs, ns, lambda secret: _secret_keys(ns, secret)),
        faults=faults,
    )
    old = platform.get("status") or {}
    if _differs(old, status):
        await rt.kube.patch_status(ns, name, _with_removals(old, status))
    _post_events(platform, old, status, applied, pruned)
    if memo is not None:
        memo.ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
    _count_platforms()


async def _faults_condition(rt: Runtime, key: Key, platform: dict[str, Any],
                            paused: bool) -> tuple[bool, str, str] | None:  # fmt: skip
    """FaultsActive from the Pods' own reports, asked only while a drill is asked for or was last
    seen applied. Until what they report matches the spec, the platform is looked at again soon:
    no watch event tells the operator that a Pod re-read its settings file."""
    spec = platform.get("spec") or {}
    asked = drills.wanted(spec, enabled_services(spec))
    was = any(c.get("type") == "FaultsActive" and c.get("status") == "True"
              for c in (platform.get("status") or {}).get("conditions") or [])  # fmt: skip
    if paused or not (asked or was):
        return None
    try:
        seen = await drills.observe(rt.kube, key[0], key[1], sorted(set(asked) | set(enabled_services(spec))))
    except Exception as exc:  # listing Pods failed: keep the last word, look again soon
        log.warning("fault reports of %s/%s unreadable: %s", *key, exc)
        rt.scheduler.recheck(key, FAULT_RECHECK_SECONDS)
        return None
    status, reason, message, settled = drills.condition(asked, seen)
    if not settled:
        rt.scheduler.recheck(key, FAULT_RECHECK_SECONDS)
    return status, reason, message


FAULT_RECHECK_SECONDS = 5.0


def _differs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(old.get(k) != v for k, v in new.items()) or any(k not in new for k in old)


def _with_removals(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    # A merge patch removes a field only when it is sent as null.
    return {**{k: None for k in old if k not in new}, **new}


def _dashboards(rendered: list[dict[str, Any]], platform: dict[str, Any]) -> list[dict[str, str]]:
    grafana = ((platform.get("spec") or {}).get("monitoring") or {}).get("grafanaUrl", "").rstrip("/")
    out = []
    for obj in rendered:
        meta = obj["metadata"]
        if obj["kind"] != "ConfigMap" or (meta.get("labels") or {}).get("grafana_dashboard") != "1":
            continue
        ann = meta.get("annotations") or {}
        row = {"name": ann.get("gameplane.io/dashboard-title", meta["name"]), "configMap": meta["name"]}
        if grafana and ann.get("gameplane.io/dashboard-uid"):
            row["url"] = f"{grafana}/d/{ann['gameplane.io/dashboard-uid']}"
        out.append(row)
    return out


def _post_events(platform: dict[str, Any], old: dict[str, Any], new: dict[str, Any], applied: int, pruned: int) -> None:
    body = {k: platform[k] for k in ("apiVersion", "kind", "metadata")}
    if applied or pruned:
        kopf.event(body, type="Normal", reason="Applied", message=f"applied {applied} objects, pruned {pruned}")
    for etype, reason, message in events(old, new):
        kopf.event(body, type=etype, reason=reason, message=message)


def _count_platforms() -> None:
    rt = runtime()
    metrics.PLATFORMS.set(rt.scheduler.known())
    # Ready as the status says (a platform applied without error may still miss a Secret or Pods).
    metrics.PLATFORMS_READY.set(sum(1 for m in rt.memo.values() if m.ready))


def _forget(rt: Runtime, key: Key) -> None:
    rt.scheduler.forget(key)
    rt.memo.pop(key, None)
    rt.referenced.pop(key, None)
    for secret, item in rt.certificates.pop(key, set()):
        metrics.CERT_EXPIRY.remove(key[0], key[1], secret, item)
    # A deleted platform leaves both counts: else platforms - platforms_ready stays above 0
    # (GameplaneOperatorPlatformNotReady) for a platform that no longer exists.
    _count_platforms()


# -- GamingPlatform handlers ----------------------------------------------------------------------
async def _reconcile_handler(namespace: str | None, name: str | None, kwargs: dict[str, Any]) -> None:
    _remember_indexes(kwargs)
    key = (namespace or "", name or "")
    if not await runtime().scheduler.run_now(key):
        memo = runtime().memo.get(key)
        raise kopf.TemporaryError(memo.outcome.message if memo else "reconcile failed", delay=10)


@kopf.on.create(GROUP, VERSION, PLURAL)
async def on_create(namespace: str | None, name: str | None, **kwargs: Any) -> None:
    await _reconcile_handler(namespace, name, kwargs)


@kopf.on.update(GROUP, VERSION, PLURAL)
async def on_update(namespace: str | None, name: str | None, **kwargs: Any) -> None:
    await _reconcile_handler(namespace, name, kwargs)


@kopf.on.resume(GROUP, VERSION, PLURAL)
async def on_resume(namespace: str | None, name: str | None, **kwargs: Any) -> None:
    await _reconcile_handler(namespace, name, kwargs)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
async def on_delete(namespace: str | None, name: str | None, **_: Any) -> None:
    rt = runtime()
    key = (namespace or "", name or "")
    _forget(rt, key)
    log.info("platform %s/%s deleted; its children are garbage-collected by ownerReferences", *key)


# -- child watches: drift and readiness ----------------------------------------------------------
def _child_handler(kind: str, has_generation: bool) -> Any:
    async def on_child_event(event: dict[str, Any], namespace: str | None, name: str | None,
                             labels: Any, meta: Any, **kwargs: Any) -> None:  # fmt: skip
        if RT is None:
            return
        _remember_indexes(kwargs)
        key = _platform_key(namespace, labels)
        gkey = (kind, namespace or "", name or "", key[1])
        if event.get("type") == "DELETED":
            RT.generations.pop(gkey, None)
            full = True
        elif has_generation:
            # Status churn (a rollout's ready counts) needs a status refresh only; a new
            # generation (someone edited the spec) needs the spec put back.
            gen = int(meta.get("generation") or 0)
            full = RT.generations.get(gkey) != gen
            RT.generations[gkey] = gen
        else:
            full = True
        # The operator's own apply sets the hash annotation; an object without it was not ours
        # to begin with or was hand-edited: both need a full pass.
        full = full or HASH_ANNOTATION not in (meta.get("annotations") or {})
        RT.scheduler.nudge(key, full=full)

    on_child_event.__name__ = f"on_{kind.lower()}_event"
    return on_child_event


for _group, _version, _plural, _gen in (
    ("apps", "v1", "deployments", True),
    ("apps", "v1", "statefulsets", True),
    ("batch", "v1", "jobs", True),
    ("autoscaling", "v2", "horizontalpodautoscalers", True),
    ("policy", "v1", "poddisruptionbudgets", True),
    ("networking.k8s.io", "v1", "networkpolicies", True),
    ("", "v1", "services", False),
    ("", "v1", "configmaps", False),
    ("", "v1", "secrets", False),
    ("", "v1", "serviceaccounts", False),
):
    kopf.on.event(_group, _version, _plural, labels=CHILD, id=f"child-{_plural}")(_child_handler(_plural, _gen))


# -- Secrets the platforms reference (not theirs: no label to select them by) ----------------------
def _platforms_referencing(namespace: str | None, name: str | None) -> list[Key]:
    if RT is None:
        return []
    return [key for key, names in RT.referenced.items() if key[0] == (namespace or "") and name in names]


def _is_referenced(namespace: str | None, name: str | None, **_: Any) -> bool:
    return bool(_platforms_referencing(namespace, name))


@kopf.on.event("", "v1", "secrets", when=_is_referenced, id="referenced-secrets")
async def on_referenced_secret(namespace: str | None, name: str | None, **kwargs: Any) -> None:
    # A Secret created (or given its key) after the platform: its status follows without any edit
    # of the platform. Pods retry missing Secrets themselves; the operator only re-evaluates.
    _remember_indexes(kwargs)
    for key in _platforms_referencing(namespace, name):
        RT.scheduler.nudge(key, full=False)  # type: ignore[union-attr]
