#!/usr/bin/env python3
"""A real local Kubernetes control plane, built from source and run as plain processes.

    python hack/controlplane.py build     # compile pinned tools into ~/.cache/gameplane (idempotent)
    python hack/controlplane.py up        # build if needed, start, write a kubeconfig, print it
    python hack/controlplane.py down      # stop what `up` started
    python hack/controlplane.py env       # print `export KUBECONFIG=...` etc. for a running plane

Every binary comes from the official Go modules through the Go module proxy (no release tarballs,
no container images): etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl
from one Kubernetes release, plus kwok (fake nodes, so Pods reach Running with no kubelet) and
helm. Each is cached as ~/.cache/gameplane/<tool>-<version>/<tool>, so only the first run pays for
compilation. See docs/cluster.md for the whole recipe.

The module is also imported by tests/cluster/conftest.py (a session fixture starts one plane).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

K8S_VERSION = "v1.37.2"
# Staging modules (k8s.io/api, client-go, ...) are published as v0.<minor>.<patch> of the release.
K8S_STAGING_VERSION = "v0" + K8S_VERSION[2:]
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.22.0"
METRICS_SERVER_VERSION = "v0.9.0"
# The custom metrics API (custom.metrics.k8s.io) from Prometheus, for HPAs on requests per second
# (observability/prometheus-adapter/config.yaml). The module proxy serves it by exact version only.
PROMETHEUS_ADAPTER_VERSION = "v0.12.0"
COREDNS_VERSION = "v1.15.0"
# The NetworkPolicy enforcer of the real test node (iptables + ipset; the bridge CNI enforces
# nothing). The module proxy serves only v2.1.0, which has advisories against its pinned
# dependencies: those are raised below to the versions the Kubernetes build already uses. It runs
# only beside the test node, never in an image or a deployment.
KUBE_ROUTER_VERSION = "v2.1.0"
# v2.16.1: the newest release whose checksum the Go checksum database serves here (v2.16.0 and
# v2.17+ answer 404), so the build stays verified.
SKAFFOLD_VERSION = "v2.16.1"

# k8s.io/kubernetes points every staging module at ./staging/src/...; a replace directive is ignored
# outside the main module, so the wrapper module must pin each one to its published version.
K8S_STAGING_MODULES = (
    "api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider "
    "cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api "
    "cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt "
    "kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics "
    "mount-utils pod-security-admission sample-apiserver streaming"
).split()
# etcd's server module replaces its sibling modules with ../api etc. in its own repository.
ETCD_SIBLINGS = ("api/v3", "client/pkg/v3", "client/v3", "pkg/v3")

CACHE = Path(os.environ.get("GAMEPLANE_CACHE", Path.home() / ".cache" / "gameplane"))
STATE = Path(os.environ.get("GAMEPLANE_CLUSTER_DIR", CACHE / "cluster"))
HOST = "127.0.0.1"
# The real node's pod bridge gateway: Pods reach the API server (and cluster DNS) there.
NODE_BRIDGE_IP = "10.89.0.1"
SERVICE_CIDR = "10.0.0.0/24"


@dataclass(frozen=True)
class GoBuild:
    """One `go build` in a generated wrapper module, producing one or more cached tools."""

    key: str
    module: str
    version: str
    packages: dict[str, str]  # tool name -> Go package path
    replaces: dict[str, str] = field(default_factory=dict)
    excludes: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    main_go: str = ""  # a main package of our own in the wrapper module (packages then name it)

    def tool_path(self, tool: str) -> Path:
        return CACHE / f"{tool}-{self.version}" / tool

    def recipe(self) -> str:
        """Fingerprint of how the tools are built: a changed flag or pin rebuilds them."""
        src = json.dumps([_wrapper_gomod(self), self.ldflags, sorted(self.packages.items()), self.main_go])
        return hashlib.sha256(src.encode()).hexdigest()[:16]

    def _stamp(self, tool: str) -> Path:
        return self.tool_path(tool).parent / ".recipe"

    def built(self) -> bool:
        return all(
            os.access(self.tool_path(t), os.X_OK)
            and self._stamp(t).exists()
            and self._stamp(t).read_text() == self.recipe()
            for t in self.packages
        )


# The plugins the node's Corefile uses, in CoreDNS's plugin.cfg order (the order of the chain).
COREDNS_PLUGINS = ("bind", "ready", "health", "errors", "cache", "kubernetes", "forward")
COREDNS_MAIN = """package main

import (
\t"github.com/coredns/coredns/core/dnsserver"
\t"github.com/coredns/coredns/coremain"
""" + "".join(f'\t_ "github.com/coredns/coredns/plugin/{p}"\n' for p in COREDNS_PLUGINS) + """)

func init() {
\tdnsserver.Directives = []string{""" + ", ".join(f'"{p}"' for p in COREDNS_PLUGINS) + """}
}

func main() { coremain.Run() }
"""


def _k8s_ldflags() -> tuple[str, ...]:
    major, minor = K8S_VERSION[1:].split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return (
        f"-X {pkg}.gitVersion={K8S_VERSION}",
        f"-X {pkg}.gitMajor={major}",
        f"-X {pkg}.gitMinor={minor}",
        f"-X {pkg}.gitTreeState=clean",
        f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",  # fixed, so rebuilds are reproducible
    )


BUILDS: tuple[GoBuild, ...] = (
    GoBuild(
        key="kubernetes",
        module="k8s.io/kubernetes",
        version=K8S_VERSION,
        packages={
            t: f"k8s.io/kubernetes/cmd/{t}"
            for t in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy")
        },
        replaces={f"k8s.io/{m}": f"k8s.io/{m} {K8S_STAGING_VERSION}" for m in K8S_STAGING_MODULES},
        ldflags=_k8s_ldflags(),
    ),
    GoBuild(
        key="etcd",
        module="go.etcd.io/etcd/server/v3",
        version=ETCD_VERSION,
        packages={"etcd": "go.etcd.io/etcd/server/v3"},
        replaces={f"go.etcd.io/etcd/{m}": f"go.etcd.io/etcd/{m} {ETCD_VERSION}" for m in ETCD_SIBLINGS},
        ldflags=(f"-X go.etcd.io/etcd/api/v3/version.GitSHA={ETCD_VERSION}",),
    ),
    GoBuild(
        key="kwok",
        module="sigs.k8s.io/kwok",
        version=KWOK_VERSION,
        packages={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
        ldflags=(f"-X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION}",),
    ),
    GoBuild(
        key="helm",
        module="helm.sh/helm/v3",
        version=HELM_VERSION,
        packages={"helm": "helm.sh/helm/v3/cmd/helm"},
        ldflags=(
            f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
            # helm's default .Capabilities.KubeVersion (used by `helm template`/`lint`) comes from
            # the client-go it links: v0.37 -> Kubernetes 1.37, as helm's own Makefile sets it.
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37",
            "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
            "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
        ),
    ),
    GoBuild(
        key="metrics-server",
        module="sigs.k8s.io/metrics-server",
        version=METRICS_SERVER_VERSION,
        packages={"metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server"},
        ldflags=(f"-X k8s.io/component-base/version.gitVersion={METRICS_SERVER_VERSION}",),
    ),
    GoBuild(
        key="prometheus-adapter",
        module="sigs.k8s.io/prometheus-adapter",
        version=PROMETHEUS_ADAPTER_VERSION,
        packages={"prometheus-adapter": "sigs.k8s.io/prometheus-adapter/cmd/adapter"},
        ldflags=(f"-X k8s.io/component-base/version.gitVersion={PROMETHEUS_ADAPTER_VERSION}",),
    ),
    GoBuild(
        key="coredns",
        module="github.com/coredns/coredns",
        version=COREDNS_VERSION,
        # CoreDNS's documented way to build with chosen plugins only: its own main imports all
        # ~60 (cloud DNS SDKs included) and took 250 s cold here; these seven compile in a fraction.
        packages={"coredns": "gameplane.local/build/coredns"},
        main_go=COREDNS_MAIN,
    ),
    GoBuild(
        key="kube-router",
        module="github.com/cloudnativelabs/kube-router/v2",
        version=KUBE_ROUTER_VERSION,
        packages={"kube-router": "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"},
        replaces={m: f"{m} {v}" for m, v in (
            ("golang.org/x/net", "v0.61.0"),
            ("golang.org/x/crypto", "v0.58.0"),
            ("google.golang.org/grpc", "v1.84.0"),
            ("google.golang.org/protobuf", "v1.36.12"),
        )},
        ldflags=(f"-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version={KUBE_ROUTER_VERSION}",),
    ),
    GoBuild(
        key="skaffold",
        module="github.com/GoogleContainerTools/skaffold/v2",
        version=SKAFFOLD_VERSION,
        packages={"skaffold": "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"},
        # skaffold's own go.mod holds these back; a replace only counts in the main module.
        replaces={m: f"{m} {v}" for m, v in (
            ("github.com/alessio/shellescape", "v1.4.2"),
            ("github.com/imdario/mergo", "v0.3.16"),
            ("github.com/docker/docker", "v27.5.1+incompatible"),
            ("github.com/docker/cli", "v27.5.1+incompatible"),
            ("github.com/spf13/viper", "v1.19.0"),
            ("github.com/buildpacks/lifecycle", "v0.20.5"),
        )},
        excludes=("github.com/karrick/godirwalk v1.17.0",),
        ldflags=(f"-X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version={SKAFFOLD_VERSION}",),
    ),
)
TOOLS: dict[str, GoBuild] = {tool: b for b in BUILDS for tool in b.packages}


def tool(name: str) -> Path:
    """Path of a cached tool binary (it may not be built yet)."""
    return TOOLS[name].tool_path(name)


def go_binary() -> str | None:
    """The Go toolchain: on PATH, else where the official tarball installs it."""
    found = shutil.which("go")
    if found:
        return found
    default = Path("/usr/local/go/bin/go")
    return str(default) if os.access(default, os.X_OK) else None


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOCACHE=str(CACHE / "go" / "build"),
        GOMODCACHE=str(CACHE / "go" / "mod"),
        GOFLAGS="-trimpath -mod=mod -buildvcs=false",
        GOTOOLCHAIN="local",  # never download a different toolchain behind our back
        CGO_ENABLED="0",
    )
    return env


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise builds across processes (CI and a developer's `make cluster` may race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _wrapper_gomod(b: GoBuild) -> str:
    lines = ["module gameplane.local/build/" + b.key, "", "go 1.26.0", "", f"require {b.module} {b.version}"]
    if b.replaces:
        lines += ["", "replace ("] + [f"\t{m} => {to}" for m, to in sorted(b.replaces.items())] + [")"]
    if b.excludes:
        lines += ["", "exclude ("] + [f"\t{e}" for e in b.excludes] + [")"]
    return "\n".join(lines) + "\n"


def build_one(b: GoBuild, log: bool = True) -> float:
    """Build `b` unless every tool it yields is cached; return the seconds spent."""
    if b.built():
        return 0.0
    go = go_binary()
    if go is None:
        raise RuntimeError("the `go` toolchain is required to build the control plane (Go >= 1.26)")
    with _locked(CACHE / "locks" / f"{b.key}-{b.version}.lock"):
        if b.built():  # another process finished it while we waited
            return 0.0
        start = time.monotonic()
        src = CACHE / "src" / f"{b.key}-{b.version}"
        src.mkdir(parents=True, exist_ok=True)
        (src / "go.mod").write_text(_wrapper_gomod(b))
        if b.main_go:
            (src / "main.go").write_text(b.main_go)
        out = src / "bin"
        out.mkdir(exist_ok=True)
        cmd = [
            go, "build", "-p", str(max(1, os.cpu_count() or 1)),
            "-ldflags", " ".join(("-s", "-w", *b.ldflags)),
            "-o", str(out) + "/", *b.packages.values(),
        ]  # fmt: skip
        if log:
            print(f"building {b.key} {b.version}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        subprocess.run(cmd, cwd=src, env=go_env(), check=True)
        for name, pkg in b.packages.items():
            # go names a binary after the last path element, skipping a major-version suffix (/v3)
            parts = [p for p in pkg.split("/") if not re.fullmatch(r"v\d+", p)]
            produced = out / parts[-1]
            dest = b.tool_path(name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(produced, dest.with_suffix(".tmp"))
            dest.with_suffix(".tmp").replace(dest)  # atomic: a half-copied binary never looks cached
            b._stamp(name).write_text(b.recipe())
        took = time.monotonic() - start
        if log:
            print(f"built {b.key} {b.version} in {took:.0f}s", file=sys.stderr, flush=True)
        return took


def build_all(log: bool = True, keys: tuple[str, ...] | None = None) -> dict[str, float]:
    """Build every tool (or the builds named in `keys`); returns seconds spent per build."""
    return {b.key: build_one(b, log) for b in BUILDS if keys is None or b.key in keys}


# What `ControlPlane.start` needs; the node, helm and skaffold are built by their users.
PLANE_BUILDS = ("kubernetes", "etcd", "kwok")


# ---------------------------------------------------------------------------------------------
# Certificates: one CA signs the API server's serving certificate and every client certificate.
# ---------------------------------------------------------------------------------------------
def _write_pki(pki: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    def key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def name(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("gameplane-local-ca"))
        .issuer_name(name("gameplane-local-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (pki / "ca.key").write_bytes(key_pem(ca_key))

    def issue(stem: str, cn: str, org: str | None, server: bool) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn, org))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            import ipaddress

            b = b.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(n) for n in ("localhost", "kubernetes", "kubernetes.default",
                                               "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")]
                    + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in (HOST, "10.0.0.1", NODE_BRIDGE_IP)]
                ),
                critical=False,
            )  # fmt: skip
        cert = b.sign(ca_key, hashes.SHA256())
        (pki / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (pki / f"{stem}.key").write_bytes(key_pem(key))

    issue("apiserver", "kube-apiserver", None, server=True)
    # The API server's RBAC bootstrap policy binds these user names and group.
    issue("admin", "gameplane-admin", "system:masters", server=False)
    issue("controller-manager", "system:kube-controller-manager", None, server=False)
    issue("scheduler", "system:kube-scheduler", None, server=False)
    issue("kwok", "kwok-controller", "system:masters", server=False)
    # The API server's identity towards kubelets (logs, exec, port-forward): the bootstrap policy
    # binds system:kubelet-api-admin to nobody, so the node harness binds it to this name.
    issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", None, server=False)
    # The aggregation layer (metrics-server): a CA of its own, so that no ordinary client
    # certificate can assert X-Remote-User headers.
    _write_front_proxy(pki, now, key_pem, name)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (pki / "sa.key").write_bytes(key_pem(sa_key))
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _write_front_proxy(pki: Path, now: dt.datetime, key_pem: Callable[..., bytes], name: Callable[..., object]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("gameplane-front-proxy-ca")
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(name("front-proxy-client")).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (pki / "front-proxy-ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (pki / "front-proxy-client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (pki / "front-proxy-client.key").write_bytes(key_pem(key))


def _kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    import yaml

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gameplane",
                      "cluster": {"server": server, "certificate-authority-data": b64(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(pki / f"{user}.crt"), "client-key-data": b64(pki / f"{user}.key")}}],
        "contexts": [{"name": "gameplane", "context": {"cluster": "gameplane", "user": user}}],
        "current-context": "gameplane",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)


_TAKEN: set[int] = set()


def free_port() -> int:
    """A port that is free now, below the kernel's ephemeral range (32768+).

    Ports from bind(0) come from the ephemeral range, which outgoing connections (the API server's
    to etcd, say) also draw from, so one could be gone by the time a later process binds it.
    """
    import random

    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if port in _TAKEN:
            continue
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        _TAKEN.add(port)
        return port
    raise RuntimeError("no free port in 20000-32000 on 127.0.0.1")


AUDIT_POLICY = """\
# Writes only, at Metadata level: who changed what, never request bodies. Reads are not logged.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    verbs: [get, list, watch]
  - level: Metadata
"""

FAKE_NODES = 3
NODE_TEMPLATE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        "labels": {"type": "kwok", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
    },
    # Real workloads belong on the real node: only Pods that tolerate this (the scale bench, the
    # operator-logic tests) land on a fake node, where no container ever runs.
    "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]},
    "status": {
        "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
        "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"},
    },
}


def _kwok_stages(workdir: Path) -> Path:
    """kwok's own 'fast' stages (as kwokctl would configure), plus one that completes `helm test` Pods.

    kwok runs no containers: a Pod goes Running and Ready at once. A helm test hook Pod must end
    Succeeded for `helm test` to report; kwok's pod-complete stage does that for Job-owned Pods, so
    the extra stage is the same rule selected by the `helm.sh/hook: test` annotation instead.
    """
    import yaml

    mod = CACHE / "go" / "mod" / "sigs.k8s.io" / f"kwok@{KWOK_VERSION}" / "kustomize" / "stage"
    docs: list[dict[str, object]] = [
        yaml.safe_load((mod / rel).read_text())
        for rel in ("node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml",
                    "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml")
    ]  # fmt: skip
    test_stage = yaml.safe_load((mod / "pod/fast/pod-complete.yaml").read_text())
    test_stage["metadata"]["name"] = "pod-complete-helm-test"
    exprs = test_stage["spec"]["selector"]["matchExpressions"]
    for e in exprs:
        if e["key"] == ".metadata.ownerReferences.[].kind":
            e.update(key='.metadata.annotations["helm.sh/hook"]', values=["test"])
    docs.append(test_stage)
    # With a configuration file kwok applies no defaults of its own, so every option is spelled out.
    options = {
        "podPlayStageParallelism": 4, "nodePlayStageParallelism": 2, "nodeLeaseParallelism": 2,
        "podsOnNodeSyncParallelism": 1, "enablePodsOnNodeSyncListPager": True,
        "enablePodsOnNodeSyncStreamWatch": False, "manageAllNodes": False,
        "enableDebuggingHandlers": False, "enableProfilingHandler": False, "enableContentionProfiling": False,
    }  # fmt: skip
    conf = {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokConfiguration", "options": options}
    path = workdir / "kwok.yaml"
    path.write_text(yaml.safe_dump_all([conf, *docs]))
    return path


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
@dataclass
class ControlPlane:
    """A running (or runnable) control plane rooted at `state`: pki/, logs/, kubeconfig, pids."""

    state: Path = STATE
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.state / "logs" / "audit.log"

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.ports['apiserver']}"

    def _spawn(self, name: str, argv: list[str]) -> None:
        logs = self.state / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = (logs / f"{name}.log").open("ab")
        # A session of its own: `make cluster` returns while the plane keeps running.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=self.state)  # fmt: skip
        self.pids[name] = proc.pid
        self._save()

    def _save(self) -> None:
        (self.state / "cluster.json").write_text(json.dumps({"ports": self.ports, "pids": self.pids}, indent=2))

    @classmethod
    def load(cls, state: Path = STATE) -> ControlPlane:
        data = json.loads((state / "cluster.json").read_text())
        return cls(state=state, ports=data["ports"], pids=data["pids"])

    def alive(self, name: str) -> bool:
        pid = self.pids.get(name)
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie (exited, not yet reaped) is not alive.
        stat = Path(f"/proc/{pid}/stat")
        return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))

    def _wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in self.pids:
                if not self.alive(name):
                    tail = (self.state / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited while waiting for {what}:\n{tail}")
            try:
                if check():
                    return
            except Exception:  # not up yet (connection refused, TLS not ready ...): poll again
                pass
            time.sleep(0.25)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; logs in {self.state / 'logs'}")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(tool("kubectl")), "--kubeconfig", str(self.kubeconfig), *args],
                              input=input, capture_output=True, text=True, check=check)  # fmt: skip

    def _healthy(self, path: str) -> bool:
        import ssl
        import urllib.request

        ctx = ssl.create_default_context(cafile=str(self.state / "pki" / "ca.crt"))
        ctx.load_cert_chain(str(self.state / "pki" / "admin.crt"), str(self.state / "pki" / "admin.key"))
        with urllib.request.urlopen(self.server + path, context=ctx, timeout=2) as r:
            return r.status == 200 and r.read().strip() == b"ok"

    def start(self, timeout: float = 120.0) -> ControlPlane:
        build_all(keys=PLANE_BUILDS)
        if self.state.exists():
            shutil.rmtree(self.state)
        self.state.mkdir(parents=True)
        pki = self.state / "pki"
        _write_pki(pki)
        (self.state / "audit-policy.yaml").write_text(AUDIT_POLICY)
        self.ports = {n: free_port() for n in ("etcd", "etcd-peer", "apiserver", "kwok")}
        t0 = time.monotonic()

        self._spawn("etcd", [
            str(tool("etcd")), "--name", "gameplane", "--data-dir", str(self.state / "etcd"),
            "--listen-client-urls", f"http://{HOST}:{self.ports['etcd']}",
            "--advertise-client-urls", f"http://{HOST}:{self.ports['etcd']}",
            "--listen-peer-urls", f"http://{HOST}:{self.ports['etcd-peer']}",
            "--initial-advertise-peer-urls", f"http://{HOST}:{self.ports['etcd-peer']}",
            "--initial-cluster", f"gameplane=http://{HOST}:{self.ports['etcd-peer']}",
            "--listen-metrics-urls", "",
            # A throwaway test cluster: durability is not worth an fsync per write on a shared disk.
            "--unsafe-no-fsync", "--quota-backend-bytes", str(2 * 1024**3), "--log-level", "warn",
        ])  # fmt: skip
        self._spawn("kube-apiserver", [
            str(tool("kube-apiserver")),
            "--etcd-servers", f"http://{HOST}:{self.ports['etcd']}",
            "--bind-address", HOST, "--advertise-address", HOST, "--secure-port", str(self.ports["apiserver"]),
            "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            # Node: kubelets may read only what their own Pods need; NodeRestriction: and write only
            # their own Node and Pods.
            "--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
            "--kubelet-client-certificate", str(pki / "apiserver-kubelet-client.crt"),
            "--kubelet-client-key", str(pki / "apiserver-kubelet-client.key"),
            "--kubelet-certificate-authority", str(pki / "ca.crt"),
            "--kubelet-preferred-address-types", "InternalIP",
            # The aggregation layer (metrics.k8s.io from metrics-server); requests go straight to
            # the extension server's Pod rather than through its ClusterIP.
            "--requestheader-client-ca-file", str(pki / "front-proxy-ca.crt"),
            "--requestheader-allowed-names", "front-proxy-client",
            "--requestheader-username-headers", "X-Remote-User",
            "--requestheader-group-headers", "X-Remote-Group",
            "--requestheader-extra-headers-prefix", "X-Remote-Extra-",
            "--proxy-client-cert-file", str(pki / "front-proxy-client.crt"),
            "--proxy-client-key-file", str(pki / "front-proxy-client.key"),
            "--enable-aggregator-routing=true",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-cluster-ip-range", SERVICE_CIDR,
            # The loopback address may not be published as the `kubernetes` Service's endpoint.
            "--endpoint-reconciler-type", "none",
            "--audit-policy-file", str(self.state / "audit-policy.yaml"),
            "--audit-log-path", str(self.audit_log), "--audit-log-format", "json",
            "--audit-log-mode", "blocking",  # each write is in the file before its response returns
            "--allow-privileged=false", "--profiling=false",
        ])  # fmt: skip
        self._wait("kube-apiserver /readyz", lambda: self._healthy("/readyz"), timeout)
        t_api = time.monotonic() - t0
        for who in ("admin", "controller-manager", "scheduler", "kwok"):
            _kubeconfig(self.state / f"{who}.kubeconfig", self.server, pki, who)
        shutil.copy(self.state / "admin.kubeconfig", self.kubeconfig)
        self.kubeconfig.chmod(0o600)

        self._spawn("kube-controller-manager", [
            str(tool("kube-controller-manager")),
            "--kubeconfig", str(self.state / "controller-manager.kubeconfig"),
            "--authentication-kubeconfig", str(self.state / "controller-manager.kubeconfig"),
            "--authorization-kubeconfig", str(self.state / "controller-manager.kubeconfig"),
            "--bind-address", HOST, "--secure-port", "0", "--leader-elect=false",
            "--use-service-account-credentials=true",
            "--service-account-private-key-file", str(pki / "sa.key"),
            "--root-ca-file", str(pki / "ca.crt"),
            "--cluster-signing-cert-file", str(pki / "ca.crt"), "--cluster-signing-key-file", str(pki / "ca.key"),
            "--service-cluster-ip-range", SERVICE_CIDR,
            # GC and ReplicaSets react fast in a test cluster; the HPA controller syncs every 15 s.
            "--concurrent-gc-syncs", "10", "--concurrent-deployment-syncs", "10",
            "--concurrent-replicaset-syncs", "10",
        ])  # fmt: skip
        self._spawn("kube-scheduler", [
            str(tool("kube-scheduler")),
            "--kubeconfig", str(self.state / "scheduler.kubeconfig"),
            "--authentication-kubeconfig", str(self.state / "scheduler.kubeconfig"),
            "--authorization-kubeconfig", str(self.state / "scheduler.kubeconfig"),
            "--bind-address", HOST, "--secure-port", "0", "--leader-elect=false",
        ])  # fmt: skip
        self._spawn("kwok", [
            str(tool("kwok")), "--config", str(_kwok_stages(self.state)),
            "--kubeconfig", str(self.state / "kwok.kubeconfig"),
            "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
            "--cidr", "10.244.0.0/16", "--node-ip", HOST,
            "--server-address", f"{HOST}:{self.ports['kwok']}",
        ])  # fmt: skip
        nodes = []
        for i in range(FAKE_NODES):
            node = json.loads(json.dumps(NODE_TEMPLATE))
            node["metadata"]["name"] = f"kwok-node-{i}"
            node["metadata"]["labels"]["kubernetes.io/hostname"] = f"kwok-node-{i}"
            nodes.append(node)
        node_list = json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes})
        self._wait("node objects", lambda: self.kubectl("apply", "-f", "-", input=node_list).returncode == 0, 30)
        self._wait("kwok nodes Ready", self._nodes_ready, timeout)
        # The controller-manager is working once it has created the default ServiceAccount.
        self._wait("default ServiceAccount", lambda: self.kubectl(
            "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0, timeout)  # fmt: skip
        took = time.monotonic() - t0
        print(f"control plane up in {took:.1f}s (apiserver ready after {t_api:.1f}s)", file=sys.stderr)
        return self

    def _nodes_ready(self) -> bool:
        out = self.kubectl("get", "nodes", "-o", "json", check=False)
        if out.returncode != 0:
            return False
        items = json.loads(out.stdout)["items"]
        ready = [
            n for n in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        ]  # fmt: skip
        return len(ready) >= FAKE_NODES

    def stop(self, grace: float = 10.0, only: tuple[str, ...] = ()) -> None:
        """SIGTERM in reverse start order, SIGKILL what outlives the grace period. `only`: stop just
        these processes (a node drains with the controllers stopped, so nothing replaces its Pods)."""
        for name in reversed(list(self.pids)):
            if only and name not in only:
                continue
            pid = self.pids[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.alive(name) and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.1)
            if self.alive(name):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pids = {n: pid for n, pid in self.pids.items() if only and n not in only}
        if self.state.exists():
            self._save()


def operator_identity(cp: ControlPlane, namespace: str = "gameplane-system", name: str = "gameplane-operator",
                      repo: Path = Path(__file__).resolve().parents[1],
                      helm_args: tuple[str, ...] = ()) -> Path:  # fmt: skip
    """Install the operator's ServiceAccount and RBAC from its chart; return a kubeconfig with its token.

    Used by the cluster tests and bench/operator.py, so that the operator they run holds exactly
    the permissions a real installation grants (no admin shortcuts). `helm_args` are values of the
    chart (e.g. watchNamespaces, whose namespaces must exist: the Roles go there).
    """
    import yaml

    cp.kubectl("create", "namespace", namespace)
    only = ["--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"]
    rendered = subprocess.run(
        [str(tool("helm")), "template", name, str(repo / "charts" / "gameplane-operator"), "--namespace", namespace,
         *only, *helm_args], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cp.kubectl("apply", "-f", "-", input=rendered)  # every object names its namespace (Roles: the watched ones)
    token = cp.kubectl("create", "token", name, "-n", namespace, "--duration", "12h").stdout.strip()
    admin = yaml.safe_load(cp.kubeconfig.read_text())
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "gameplane", "user": name}}],
        "current-context": "operator",
    }
    path = cp.state / f"operator-{namespace}.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    path.chmod(0o600)
    return path


def env_lines(cp: ControlPlane) -> str:
    return "\n".join([
        f"export KUBECONFIG={cp.kubeconfig}",
        f"export PATH={tool('kubectl').parent}:{tool('helm').parent}:$PATH",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["build", "up", "down", "env", "status"])
    parser.add_argument("--state", type=Path, default=STATE, help="where pki, logs and the kubeconfig go")
    args = parser.parse_args(argv)
    if args.command == "build":
        took = build_all()
        for b in BUILDS:
            how = f"built in {took[b.key]:.0f}s" if took[b.key] else "cached"
            print(f"{b.key:<11} {b.version:<9} {how}")
            for t in b.packages:
                print(f"  {b.tool_path(t)}")
        return 0
    if args.command == "up":
        if (args.state / "cluster.json").exists():
            old = ControlPlane.load(args.state)
            if any(old.alive(n) for n in old.pids):
                print(f"already running; `{sys.argv[0]} down` first\n{env_lines(old)}")
                return 1
        cp = ControlPlane(state=args.state).start()
        print(f"kube-apiserver {cp.server}  ({K8S_VERSION}, etcd {ETCD_VERSION}, kwok {KWOK_VERSION}, "
              f"{FAKE_NODES} fake nodes)")  # fmt: skip
        print(f"kubeconfig     {cp.kubeconfig}\naudit log      {cp.audit_log}\nlogs           {cp.state / 'logs'}")
        print("Use it:\n" + env_lines(cp))
        return 0
    if not (args.state / "cluster.json").exists():
        print("no control plane was started here", file=sys.stderr)
        return 0 if args.command == "down" else 1
    cp = ControlPlane.load(args.state)
    if args.command == "down":
        cp.stop()
        print("control plane stopped")
    elif args.command == "env":
        print(env_lines(cp))
    else:
        for name, pid in cp.pids.items():
            print(f"{name:<24} pid {pid:<8} {'running' if cp.alive(name) else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
