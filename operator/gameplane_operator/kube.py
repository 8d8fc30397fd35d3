"""The operator's own Kubernetes API access: server-side apply, prune, status.

Built on the official `kubernetes` client (its dynamic client maps any kind to its REST path). The
client is synchronous, so calls run in worker threads; every write is counted, because "a reconcile
with nothing changed writes nothing" is a property the tests and the benchmark check.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

import kubernetes
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from . import metrics
from .config import FIELD_MANAGER, GROUP, PLURAL, VERSION
from .render import Capabilities

# Kinds the gameplane chart can render, hence the kinds prune looks at. Optional APIs (Prometheus
# Operator, Gateway API) are looked at only when the cluster serves them.
CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),  # each service's migration Job (docs/upgrades.md)
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
)
# Every kind a drift correction can name exists from the start at 0 (see metrics.py).
for _, _kind in CHILD_KINDS:
    metrics.DRIFT_CORRECTIONS.labels(kind=_kind)
CUSTOM_METRICS = "custom.metrics.k8s.io/v1beta1"  # an HPA's requests-per-second (Pods) metric
# APIs the charts gate on with .Capabilities.APIVersions.Has: passed to `helm template`.
GATED_APIS: tuple[tuple[str, str | None], ...] = (
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    (CUSTOM_METRICS, None),
)


def load_api_client(kubeconfig: str | None) -> kubernetes.client.ApiClient:
    """An ApiClient of its own (never the global default), in-cluster or from a kubeconfig."""
    cfg = kubernetes.client.Configuration()
    if kubeconfig is None:
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=cfg)
    else:
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = 16
    return kubernetes.client.ApiClient(cfg)


def connection_info(kubeconfig: str | None) -> dict[str, Any]:
    """kopf's connection settings from the same source as our own client (see handlers.login)."""
    cfg = load_api_client(kubeconfig).configuration
    keys = cfg.api_key or {}
    token = (keys.get("BearerToken") or keys.get("authorization") or "").strip()
    # In-cluster config stores "bearer <token>" (lower case), a kubeconfig "Bearer <token>".
    scheme, _, value = token.partition(" ")
    if value and scheme.lower() == "bearer":
        token = value.strip()
    return {
        "server": cfg.host,
        "ca_path": cfg.ssl_ca_cert,
        "insecure": not cfg.verify_ssl,
        "token": token or None,
        "scheme": "Bearer" if token else None,
        "certificate_path": cfg.cert_file,
        "private_key_path": cfg.key_file,
    }


class Kube:
    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.api = api
        self._caps: tuple[float, Capabilities] | None = None
        self._served: dict[tuple[str, str], bool] = {}

    @functools.cached_property
    def dyn(self) -> DynamicClient:
        # Built on first use: its construction already asks the API server (discovery), and a
        # server that cannot be reached then is a failed reconcile to count and retry, not a crash.
        return DynamicClient(self.api)

    # -- discovery ---------------------------------------------------------------------------
    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def _serves(self, api_version: str, kind: str | None) -> bool:
        if kind is None:
            # A group version by discovery, as helm's .Capabilities.APIVersions lists it. Its
            # resources are no test: an aggregated API such as custom.metrics.k8s.io lists none
            # until it has data, then names like pods/<metric> that look like subresources.
            group, _, _ = api_version.rpartition("/")
            groups = kubernetes.client.ApisApi(self.api).get_api_versions().groups
            return any(g.name == group and any(v.group_version == api_version for v in g.versions) for g in groups)
        try:
            self._resource(api_version, kind)
            return True
        except ResourceNotFoundError:
            return False

    async def capabilities(self, max_age: float = 60.0) -> Capabilities:
        """Kubernetes version and the gated APIs this cluster serves (refreshed every minute)."""
        now = time.monotonic()
        if self._caps and now - self._caps[0] < max_age:
            return self._caps[1]

        def probe() -> Capabilities:
            self.dyn.resources.invalidate_cache()
            version = kubernetes.client.VersionApi(self.api).get_code().git_version
            apis: list[str] = []
            for api_version, kind in GATED_APIS:
                if self._serves(api_version, kind):
                    apis.append(api_version if kind is None else f"{api_version}/{kind}")
                    if kind is None or api_version not in apis:
                        apis.append(api_version)
            self._served = {k: self._serves(*k) for k in CHILD_KINDS}
            return Capabilities(kube_version=version, api_versions=tuple(sorted(set(apis))))

        caps = await asyncio.to_thread(probe)
        self._caps = (now, caps)
        return caps

    def served_child_kinds(self) -> list[tuple[str, str]]:
        return [k for k in CHILD_KINDS if self._served.get(k, k[0] in ("v1", "apps/v1", "batch/v1"))]

    # -- reads -------------------------------------------------------------------------------
    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        def call() -> dict[str, Any] | None:
            try:
                return self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
            except NotFoundError:
                return None

        return await asyncio.to_thread(call)

    async def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        def call() -> list[dict[str, Any]]:
            res = self._resource(api_version, kind).get(namespace=namespace, label_selector=selector)
            items = res.to_dict().get("items") or []
            for item in items:  # list items carry no apiVersion/kind of their own
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
            return items

        return await asyncio.to_thread(call)

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        def call() -> list[dict[str, Any]]:
            pods = kubernetes.client.CoreV1Api(self.api).list_namespaced_pod(namespace, label_selector=selector)
            return [self.api.sanitize_for_serialization(p) for p in pods.items]

        return await asyncio.to_thread(call)

    async def pod_get(self, namespace: str, pod: str, port: int, path: str) -> dict[str, Any]:
        """GET a Pod's own HTTP endpoint through the API server's Pod proxy, as JSON. A non-2xx
        answer with a JSON body (a failing /readyz: 503 problem+json) is returned, not raised."""

        def call() -> dict[str, Any]:
            try:
                # Raw bytes: the client would otherwise "deserialize" a JSON body into a str of a dict.
                resp = kubernetes.client.CoreV1Api(self.api).connect_get_namespaced_pod_proxy_with_path(
                    f"{pod}:{port}", namespace, path, _request_timeout=3, _preload_content=False)
            except kubernetes.client.ApiException as exc:
                if exc.status and exc.status >= 500 and exc.body:
                    try:
                        return dict(json.loads(exc.body))
                    except ValueError:
                        pass
                raise
            return dict(json.loads(resp.data))

        return await asyncio.to_thread(call)

    async def get_platform(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.get(f"{GROUP}/{VERSION}", "GamingPlatform", namespace, name)

    # -- writes (each one counted) -----------------------------------------------------------
    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply under the operator's field manager; force, as the owner of the spec."""
        meta = obj["metadata"]

        def call() -> dict[str, Any]:
            res = self._resource(obj["apiVersion"], obj["kind"])
            return self.dyn.server_side_apply(
                res, body=obj, name=meta["name"], namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER, force_conflicts=True,
            ).to_dict()  # fmt: skip

        metrics.API_WRITES.labels(verb="apply", kind=obj["kind"]).inc()
        return await asyncio.to_thread(call)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        def call() -> None:
            try:
                self._resource(api_version, kind).delete(
                    name=name, namespace=namespace, body={"propagationPolicy": "Background"}
                )
            except NotFoundError:
                pass

        metrics.API_WRITES.labels(verb="delete", kind=kind).inc()
        await asyncio.to_thread(call)

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        def call() -> None:
            kubernetes.client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status}
            )

        metrics.API_WRITES.labels(verb="patch_status", kind="GamingPlatform").inc()
        await asyncio.to_thread(call)
