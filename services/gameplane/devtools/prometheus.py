"""A real Prometheus server (Debian's `prometheus` package, /usr/bin/prometheus) for tests and local
runs, configured the way the Prometheus Operator configures one for the charts' objects.

What the Operator would generate from a ServiceMonitor is built here from the chart's rendered
ServiceMonitor and Service (`operator_scrape_job`): the same job name, honor_labels and relabel
rules, in the same order, so every scraped series carries exactly the labels it has in a cluster
(job, namespace, service = the Kubernetes Service's name, pod, container, endpoint, instance) and
then the ServiceMonitor's own relabelings. Only the discovery differs: there is no API server, so
the target is a static one carrying the `__meta_kubernetes_*` labels the endpoints discovery would
give it (the process's address stands for the Pod's IP and port). The Operator's reference output
is its golden files (github.com/prometheus-operator/prometheus-operator, pkg/prometheus/testdata).
PrometheusRule objects become rule files as the Operator writes them (`<namespace>-<name>.yaml`,
the object's `spec`).

`adapter_query` fills a prometheus-adapter `metricsQuery` the way the adapter does for a
pod-scoped custom metric, so the query an HPA's `rpsTarget` causes can be run against the server.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import yaml

from gameplane.devtools.infra import HOST, free_port, wait_answering

PROMETHEUS = Path("/usr/bin/prometheus")
T = TypeVar("T")


class PrometheusError(RuntimeError):
    """The server did not start, or answered a query with an error."""


# -- what the Prometheus Operator generates --------------------------------------------------------


def label_name(key: str) -> str:
    """A Kubernetes label key as Prometheus' discovery spells it in `__meta_*` names."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _relabel(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A ServiceMonitor RelabelConfig (camelCase) in Prometheus' configuration (snake_case)."""
    keys = {"sourceLabels": "source_labels", "targetLabel": "target_label", "separator": "separator",
            "regex": "regex", "modulus": "modulus", "replacement": "replacement", "action": "action"}
    out = {keys[k]: v for k, v in rule.items() if k in keys}
    if "action" in out:
        out["action"] = str(out["action"]).lower()
    return out


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a matchLabels selector selects an object with `labels` (matchExpressions unsupported)."""
    if selector.get("matchExpressions"):
        raise NotImplementedError("matchExpressions")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


@dataclass(frozen=True)
class LocalPod:
    """A local process standing for one Pod behind a Service: `address` (host:port) is where its
    metrics are served."""

    name: str
    container: str
    address: str


def operator_scrape_job(monitor: Mapping[str, Any], service: Mapping[str, Any], pod: LocalPod, *,
                        index: int = 0, interval: str | None = None) -> dict[str, Any]:
    """The scrape job the Prometheus Operator generates for endpoint `index` of `monitor`, with its
    discovery replaced by one static target: `pod`, behind `service` (both rendered objects).

    `interval` overrides the endpoint's interval (short runs); nothing else is changed."""
    endpoint = monitor["spec"]["endpoints"][index]
    if "port" not in endpoint:
        raise NotImplementedError("only endpoints that name a Service port")
    namespace = monitor["metadata"]["namespace"]
    if service["metadata"]["namespace"] != namespace or not selects(monitor["spec"]["selector"],
                                                                   service["metadata"].get("labels") or {}):
        raise ValueError(f"ServiceMonitor {monitor['metadata']['name']} does not select Service "
                         f"{service['metadata']['name']}")
    port_names = [p.get("name") for p in service["spec"]["ports"]]
    if endpoint["port"] not in port_names:
        raise ValueError(f"Service {service['metadata']['name']} has no port {endpoint['port']!r}")

    relabel: list[dict[str, Any]] = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    for key, value in sorted((monitor["spec"]["selector"].get("matchLabels") or {}).items()):
        name = label_name(key)
        relabel.append({"action": "keep", "regex": f"({value});true", "source_labels": [
            f"__meta_kubernetes_service_label_{name}", f"__meta_kubernetes_service_labelpresent_{name}"]})
    relabel += [
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": endpoint["port"]},
        {"source_labels": ["__meta_kubernetes_endpoint_address_target_kind",
                           "__meta_kubernetes_endpoint_address_target_name"],
         "separator": ";", "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"},
        {"source_labels": ["__meta_kubernetes_endpoint_address_target_kind",
                           "__meta_kubernetes_endpoint_address_target_name"],
         "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
    ]
    job_label = monitor["spec"].get("jobLabel")
    if job_label:
        relabel.append({"source_labels": [f"__meta_kubernetes_service_label_{label_name(job_label)}"],
                        "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
    else:
        relabel.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job",
                        "replacement": "${1}"})
    relabel.append({"target_label": "endpoint", "replacement": endpoint["port"]})
    relabel += [_relabel(r) for r in endpoint.get("relabelings") or []]
    # Sharding (one shard: every target kept), as the Operator ends every job.
    relabel += [
        {"source_labels": ["__address__"], "target_label": "__tmp_hash", "modulus": 1, "action": "hashmod"},
        {"source_labels": ["__tmp_hash"], "regex": "0", "action": "keep"},
    ]

    meta = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_service_name": service["metadata"]["name"],
        "__meta_kubernetes_endpoint_port_name": endpoint["port"],
        "__meta_kubernetes_endpoint_ready": "true",
        "__meta_kubernetes_endpoint_address_target_kind": "Pod",
        "__meta_kubernetes_endpoint_address_target_name": pod.name,
        "__meta_kubernetes_pod_name": pod.name,
        "__meta_kubernetes_pod_container_name": pod.container,
        "__meta_kubernetes_pod_phase": "Running",
    }
    for key, value in (service["metadata"].get("labels") or {}).items():
        meta[f"__meta_kubernetes_service_label_{label_name(key)}"] = str(value)
        meta[f"__meta_kubernetes_service_labelpresent_{label_name(key)}"] = "true"

    job: dict[str, Any] = {
        "job_name": f"serviceMonitor/{namespace}/{monitor['metadata']['name']}/{index}",
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "static_configs": [{"targets": [pod.address], "labels": meta}],
        "metrics_path": endpoint.get("path", "/metrics"),
        "scheme": endpoint.get("scheme", "http"),
        "relabel_configs": relabel,
    }
    if interval or endpoint.get("interval"):
        job["scrape_interval"] = interval or endpoint["interval"]
    if endpoint.get("metricRelabelings"):
        job["metric_relabel_configs"] = [_relabel(r) for r in endpoint["metricRelabelings"]]
    return job


def rule_files(objects: Iterable[Mapping[str, Any]], directory: Path,
               edit: Callable[[dict[str, Any]], None] | None = None, interval: str | None = None) -> list[Path]:
    """Each PrometheusRule of `objects` as the rule file the Operator writes for it; `edit` may change
    each rule (a dict) first, `interval` replaces every group's own evaluation interval (short runs)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for obj in objects:
        if obj.get("kind") != "PrometheusRule":
            continue
        groups = json.loads(json.dumps(obj["spec"]["groups"]))  # a copy the edit cannot leak from
        for group in groups:
            if interval is not None:
                group["interval"] = interval
        if edit is not None:
            for group in groups:
                for rule in group["rules"]:
                    edit(rule)
        path = directory / f"{obj['metadata']['namespace']}-{obj['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        paths.append(path)
    return paths


# -- what the prometheus-adapter does -------------------------------------------------------------


def adapter_query(metrics_query: str, *, series: str, namespace: str, pods: Iterable[str],
                  resource_label: str = "pod", namespace_label: str = "namespace") -> str:
    """`metrics_query` (a Go template with << >> delimiters) filled as prometheus-adapter fills it for
    a custom metric of Pods: the series name, the namespace and the Pods (their names joined by `|`,
    unescaped: Pod names are DNS names) as label matchers, grouped by the Pods' label."""
    names = "|".join(pods)
    values = {
        "Series": series,
        "LabelMatchers": f'{namespace_label}="{namespace}",{resource_label}=~"{names}"',
        "GroupBy": resource_label,
    }
    out = re.sub(r"<<\s*\.(\w+)\s*>>", lambda m: values[m.group(1)], metrics_query)
    if "<<" in out:
        raise ValueError(f"unfilled template in {metrics_query!r}")
    return out


# -- the server ---------------------------------------------------------------------------------------


class Prometheus:
    """`/usr/bin/prometheus` on 127.0.0.1:<free port> with `config` (a dict, written as
    prometheus.yml) and its TSDB in `data_dir`; `query`, `alerts`, `targets` over its HTTP API."""

    def __init__(self, data_dir: Path, config: Mapping[str, Any], *, port: int | None = None,
                 binary: Path = PROMETHEUS) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.config = config
        self.port = port
        self.binary = binary
        self.log_path = self.data_dir / "prometheus.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.binary}: install Debian's prometheus package (make host-deps)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.data_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(dict(self.config), sort_keys=False))
        if self.port is None:
            self.port = free_port()
        argv = [str(self.binary), f"--config.file={config_path}", f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                f"--web.listen-address={HOST}:{self.port}", "--storage.tsdb.retention.time=1d"]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, cwd=str(self.data_dir))
        try:
            wait_answering(self._proc, f"{self.url}/-/ready", timeout, "prometheus", self.log)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise PrometheusError(str(exc)) from None

    def stop(self, timeout: float = 20.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def log(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def api(self, path: str, **params: str | list[str]) -> Any:
        """GET /api/v1/<path>: its `data`, or PrometheusError with the server's error."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query at the server's now: the result vector (a scalar comes back as one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        return list(self.api(f"label/{label}/values", **({"match[]": match} if match else {})))

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets", state="active")["activeTargets"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        """Every rule of every group, with its health, last error and state."""
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def wait(self, check: Callable[[], T | None], timeout: float, interval: float = 1.0, what: str = "") -> T:
        """Poll `check` until it returns something truthy; PrometheusError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise PrometheusError(f"not seen within {timeout:.0f}s: {what}")
            time.sleep(interval)
