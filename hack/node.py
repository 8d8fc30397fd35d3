#!/usr/bin/env python3
"""One real Kubernetes node on this machine, joined to the control plane of hack/controlplane.py.

    python hack/node.py up   [--state DIR]   # needs a running control plane in DIR (its parent)
    python hack/node.py down [--state DIR]
    python hack/node.py clean                # undo what a killed run left on the host

Host processes, no VM and no kind: containerd (Debian's, with runc and the CNI plugins), a kubelet
and kube-proxy built from the same Kubernetes module as the control plane, kube-router's
network-policy controller (the bridge CNI enforces no NetworkPolicy; kube-router does, with
iptables and ipsets), and a TCP forwarder that lets Pods reach the API server (which listens on
loopback only). CoreDNS (hack/manifests/coredns.yaml) and metrics-server
(hack/manifests/metrics-server.yaml) run as Pods.

A node changes the host: a bridge, iptables chains, sysctls, cgroups, mounts. So:
- one node per machine, guarded by an flock on LOCK that the node's own processes inherit: the
  lock is held exactly as long as any of them lives, even after `up` has returned;
- every sysctl is recorded in HOST_RECORD before it is first changed and put back by `down` (or
  by the next `up`/`clean` when a run was killed);
- `down` deletes the Pods through the kubelet first (so CNI tears down each sandbox), then stops
  the processes and removes whatever is left: containers, mounts, network namespaces, the bridge,
  the KUBE-*/CNI-* chains, the kubepods cgroups. `leftovers()` lists what remains (tests assert
  it is empty).

Facts this rests on (cgroup v1 needs failCgroupV1: false; no CAP_SYS_RESOURCE, so containerd must
not set negative oom scores ...) are in docs/cluster.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as `python hack/node.py`: make `hack.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hack import controlplane as cp  # noqa: E402

NODE_NAME = "gameplane-node"
BRIDGE = "gp0"
BRIDGE_IP = cp.NODE_BRIDGE_IP
POD_CIDR = "10.89.0.0/16"
POD_RANGE = ("10.89.0.10", "10.89.255.250")
DNS_SERVICE_IP = "10.0.0.10"
API_PORT_ON_BRIDGE = 6443
MTU = 1400  # the host's uplink MTU: larger pod packets would be dropped on the way out
CNI_NETWORK = "gameplane"
CNI_BIN = Path("/usr/lib/cni")
RUN = Path("/run/gameplane")
LOCK = Path("/var/lock/gameplane-node.lock")
HOST_RECORD = Path("/var/lib/gameplane/node-host-state.json")

# Sysctls the node needs or that its components change (kubelet sets the kernel.* and vm.* ones
# to its own defaults); recorded before the first change, restored on down.
SYSCTLS_SET = {
    "net.ipv4.ip_forward": "1",  # pod traffic leaves through the host
    "net.bridge.bridge-nf-call-iptables": "1",  # Service NAT for pod-to-pod traffic on one bridge
}
SYSCTLS_TOUCHED = (*SYSCTLS_SET, "vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
DEBIAN_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "ipset", "conntrack", "socat")
PROCESSES = ("containerd", "kubelet", "kube-proxy", "kube-router", "api-forward")
# ipsets kube-router creates (its chains are KUBE-*, removed with kube-proxy's).
IPSET_PREFIXES = ("KUBE-", "kube-router")


class NodeError(RuntimeError):
    pass


def _run(argv: list[str], *, check: bool = True, input: str | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, check=check, input=input, timeout=timeout)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctl(name: str) -> str:
    return _sysctl_path(name).read_text().strip()


def write_sysctl(name: str, value: str) -> None:
    _sysctl_path(name).write_text(value + "\n")


def missing_prerequisites() -> list[str]:
    """What this machine lacks for a real node (empty when it can run one)."""
    out = []
    if os.geteuid() != 0:
        out.append("root (a kubelet manages cgroups, mounts and iptables)")
    for binary in ("containerd", "runc", "ctr", "iptables", "ipset", "socat", "conntrack"):
        if shutil.which(binary) is None:
            out.append(f"the `{binary}` command (Debian packages: {' '.join(DEBIAN_PACKAGES)})")
    for plugin in ("bridge", "host-local", "loopback", "portmap"):
        if not (CNI_BIN / plugin).exists():
            out.append(f"the CNI plugin {CNI_BIN / plugin} (Debian package containernetworking-plugins)")
    if not Path("/proc/sys/net/bridge").exists():
        out.append("the br_netfilter kernel module")
    return out


# ---------------------------------------------------------------------------------------------
# The machine-wide lock and the host record
# ---------------------------------------------------------------------------------------------
def _lock_holder() -> str:
    with contextlib.suppress(OSError):
        return LOCK.read_text().strip()
    return "unknown"


@contextlib.contextmanager
def machine_lock(wait: float = 0) -> Iterator[int]:
    """The node lock as an open descriptor (inheritable, so the node's processes keep it held).

    `wait` seconds to wait for another run to finish; raises NodeError naming the holder.
    """
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise NodeError(
                    f"another real node runs on this machine ({_lock_holder()}); stop it first "
                    f"(`make cluster-down`, or `python hack/node.py down --state DIR`)"
                ) from None
            time.sleep(1)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}\n".encode(), 0)
    os.set_inheritable(fd, True)
    try:
        yield fd
    finally:
        os.close(fd)  # the lock stays held while a child that inherited it lives


def record_host() -> None:
    """Remember the original value of every sysctl a node touches, unless already recorded
    (a record left by a killed run holds the true originals)."""
    if HOST_RECORD.exists():
        return
    HOST_RECORD.parent.mkdir(parents=True, exist_ok=True)
    values = {name: read_sysctl(name) for name in SYSCTLS_TOUCHED if _sysctl_path(name).exists()}
    tmp = HOST_RECORD.with_suffix(".tmp")
    tmp.write_text(json.dumps({"sysctls": values, "recorded": time.time()}, indent=2))
    tmp.replace(HOST_RECORD)


def restore_host() -> list[str]:
    """Put every recorded sysctl back; returns what it changed."""
    if not HOST_RECORD.exists():
        return []
    record = json.loads(HOST_RECORD.read_text())
    changed = []
    for name, value in record["sysctls"].items():
        with contextlib.suppress(OSError):
            if read_sysctl(name) != value:
                write_sysctl(name, value)
                changed.append(f"{name}={value}")
    HOST_RECORD.unlink()
    return changed


# ---------------------------------------------------------------------------------------------
# Certificates: the node's identities, signed by the control plane's CA
# ---------------------------------------------------------------------------------------------
def _issue(pki: Path, stem: str, cn: str, org: str | None, *, server_ips: tuple[str, ...] = (),
           server_names: tuple[str, ...] = ()) -> None:  # fmt: skip
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server_ips or server_names else [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    )  # fmt: skip
    if server_ips or server_names:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    (pki / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (pki / f"{stem}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )  # fmt: skip
    (pki / f"{stem}.key").chmod(0o600)


# What the node's components may do, beyond the API server's bootstrap policy (which already
# binds system:node-proxier to system:kube-proxy and system:node to the Node authorizer).
NODE_RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gameplane:apiserver-kubelet-client, labels: {app.kubernetes.io/part-of: gameplane-node}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: gameplane:kube-router, labels: {app.kubernetes.io/part-of: gameplane-node}}
rules:
  - apiGroups: [""]
    resources: [namespaces, pods, services, endpoints, nodes]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gameplane:kube-router, labels: {app.kubernetes.io/part-of: gameplane-node}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gameplane:kube-router}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: gameplane:kube-router}]
"""


def _service_and_slice(namespace: str, name: str, cluster_ip: str | None, ports: list[dict[str, Any]],
                       address: str) -> str:  # fmt: skip
    """A selector-less Service (unless it exists already) and the EndpointSlice that points it at
    a host process on the bridge (the API server)."""
    docs: list[dict[str, Any]] = []
    if cluster_ip:
        docs.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": {"k8s-app": name}},
            "spec": {"clusterIP": cluster_ip, "ports": [{k: p[k] for k in ("name", "port", "protocol")}
                                                       | {"targetPort": p["targetPort"]} for p in ports]},
        })  # fmt: skip
    docs.append({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{name}-gameplane-node", "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": name,
                                "endpointslice.kubernetes.io/managed-by": "gameplane-node"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": p["name"], "port": p["targetPort"], "protocol": p["protocol"]} for p in ports],
    })  # fmt: skip
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


# ---------------------------------------------------------------------------------------------
# The node
# ---------------------------------------------------------------------------------------------
@dataclass
class Node:
    """A node belonging to the control plane whose state directory is `plane_state`."""

    plane_state: Path
    pids: dict[str, int] = field(default_factory=dict)
    _ports: dict[str, int] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.plane_state / "node"

    @property
    def containerd_socket(self) -> Path:
        return RUN / "containerd" / "containerd.sock"

    @property
    def plane(self) -> Any:
        return cp.ControlPlane.load(self.plane_state)

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def containerd_root(self) -> Path:
        return self.state / "containerd"

    def _save(self) -> None:
        (self.state / "node.json").write_text(json.dumps({"pids": self.pids}, indent=2))

    @classmethod
    def load(cls, plane_state: Path) -> Node:
        node = cls(plane_state=plane_state)
        path = node.state / "node.json"
        if path.exists():
            node.pids = json.loads(path.read_text())["pids"]
        return node

    def alive(self, name: str) -> bool:
        pid = self.pids.get(name)
        if not pid:
            return False
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and not stat.read_text().split(") ", 1)[-1].startswith("Z")

    def _spawn(self, name: str, argv: list[str], lock_fd: int, env: dict[str, str] | None = None) -> None:
        logs = self.state / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = (logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, pass_fds=(lock_fd,), cwd=self.state,
                                env={**os.environ, **(env or {})})  # fmt: skip
        self.pids[name] = proc.pid
        self._save()

    def _wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            for name in self.pids:
                if not self.alive(name):
                    tail = (self.state / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise NodeError(f"{name} exited while waiting for {what}:\n{tail}")
            try:
                if check():
                    return
            except Exception as exc:  # not up yet: poll again
                last = exc
            time.sleep(0.25)
        raise NodeError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}); "
                        f"logs in {self.state / 'logs'}")  # fmt: skip

    # -- configuration files --------------------------------------------------------------------
    def _write_configs(self) -> None:
        import yaml

        pki = self.state / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        plane_pki = self.plane_state / "pki"
        for f in ("ca.crt", "ca.key"):
            shutil.copy(plane_pki / f, pki / f)
        _issue(pki, "kubelet-client", f"system:node:{NODE_NAME}", "system:nodes")
        _issue(pki, "kubelet-serving", f"system:node:{NODE_NAME}", "system:nodes",
               server_ips=(BRIDGE_IP, "127.0.0.1"), server_names=(NODE_NAME, "localhost"))  # fmt: skip
        _issue(pki, "kube-proxy", "system:kube-proxy", None)
        _issue(pki, "kube-router", "gameplane:kube-router", None)
        (pki / "ca.key").unlink()  # the node needs the CA's certificate only
        server = self.plane.server
        for who, stem in (("kubelet", "kubelet-client"), ("kube-proxy", "kube-proxy"), ("kube-router", "kube-router")):
            _write_kubeconfig(self.state / f"{who}.kubeconfig", server, pki, stem)

        cni = self.state / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "1.0.0",
            "name": CNI_NETWORK,
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": True, "hairpinMode": True,
                 "mtu": MTU, "ipam": {"type": "host-local", "dataDir": str(cni / "ipam"),
                                      "ranges": [[{"subnet": POD_CIDR, "rangeStart": POD_RANGE[0],
                                                   "rangeEnd": POD_RANGE[1], "gateway": BRIDGE_IP}]],
                                      "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }  # fmt: skip
        (cni / "net.d" / "10-gameplane.conflist").write_text(json.dumps(conflist, indent=2))

        pause = _images().BY_KEY["pause"].tag
        (self.state / "containerd.toml").write_text(f"""\
version = 2
root = "{self.containerd_root}"
state = "{RUN / 'containerd' / 'state'}"
oom_score = 0
[grpc]
  address = "{self.containerd_socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # The machine has no CAP_SYS_RESOURCE: negative oom_score_adj values cannot be set.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni / 'net.d'}"
""")
        kubelet = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,  # this machine has cgroup v1 only; 1.37 refuses it otherwise
            "cgroupDriver": "cgroupfs",  # no systemd
            "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE for the default -999
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(pki / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
            "address": BRIDGE_IP,
            "healthzBindAddress": "127.0.0.1",
            "readOnlyPort": 0,
            "clusterDNS": [DNS_SERVICE_IP],
            "clusterDomain": "cluster.local",
            "resolvConf": str(self.state / "resolv.conf"),
            "failSwapOn": False,
            "serializeImagePulls": False,
            # Images here cannot be pulled again: never garbage-collect them.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "200Mi", "nodefs.available": "2%", "imagefs.available": "2%"},
            "evictionPressureTransitionPeriod": "10s",
            "nodeStatusReportFrequency": "10s",
            "nodeStatusUpdateFrequency": "5s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "5s",
            "maxPods": 110,
            "podPidsLimit": 4096,
            "shutdownGracePeriod": "0s",
            "containerLogMaxSize": "10Mi",
            "containerLogMaxFiles": 2,
            "protectKernelDefaults": False,
            "podLogsDir": str(self.state / "pod-logs"),
            "localStorageCapacityIsolation": True,
            # Container CPU for metrics-server from containerd itself: cAdvisor's containerd
            # factory would dial /run/containerd/containerd.sock, which is not this node's socket.
            "featureGates": {"PodAndContainerStatsFromCRI": True},
        }  # fmt: skip
        (self.state / "kubelet.yaml").write_text(yaml.safe_dump(kubelet))
        proxy = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.state / "kube-proxy.kubeconfig")},
            "mode": "iptables",
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": POD_CIDR,
            "bindAddress": "127.0.0.1",
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # Zeros leave the host's conntrack sysctls alone; no NodePorts on 127.0.0.1 (that needs
            # route_localnet, a host-wide setting).
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False, "syncPeriod": "10s", "minSyncPeriod": "1s"},
            "nodePortAddresses": [f"{BRIDGE_IP}/32"],
        }  # fmt: skip
        (self.state / "kube-proxy.yaml").write_text(yaml.safe_dump(proxy))
        # CoreDNS (a Pod, dnsPolicy Default) forwards what is not cluster.local to the host's resolvers.
        (self.state / "resolv.conf").write_text(Path("/etc/resolv.conf").read_text())

    # -- up / down ------------------------------------------------------------------------------
    def start(self, images: list[str] | None = None, timeout: float = 120) -> Node:
        problems = missing_prerequisites()
        if problems:
            raise NodeError("this machine cannot run a real node; missing: " + "; ".join(problems))
        for tool in ("kubelet", "kube-proxy", "kube-router"):
            cp.build_one(cp.TOOLS[tool])
        t0 = time.monotonic()
        with machine_lock() as lock_fd:
            clean_host()  # whatever a killed run left behind
            if self.state.exists():
                shutil.rmtree(self.state)
            self.state.mkdir(parents=True)
            RUN.mkdir(parents=True, exist_ok=True)
            self._ports = {"netpol-health": cp.free_port()}
            self._write_configs()
            record_host()
            for name, value in SYSCTLS_SET.items():
                write_sysctl(name, value)
            _ensure_bridge()
            plane = self.plane
            plane.kubectl("apply", "-f", "-", input=NODE_RBAC)

            self._spawn("containerd", ["containerd", "--config", str(self.state / "containerd.toml")], lock_fd)
            self._wait("containerd", lambda: _run(self._ctr("version"), check=False).returncode == 0, 30)
            pause = _images().BY_KEY["pause"].tag
            coredns = _images().BY_KEY["coredns"].tag
            _images().load_into_containerd(str(self.containerd_socket),
                                           list(dict.fromkeys([pause, coredns, *(images or [])])))
            t_images = time.monotonic() - t0

            # Pods reach the API server at the bridge address (kubernetes.default.svc's endpoint).
            self._spawn("api-forward", ["socat", f"TCP-LISTEN:{API_PORT_ON_BRIDGE},bind={BRIDGE_IP},fork,reuseaddr",
                                        f"TCP:{cp.HOST}:{plane.ports['apiserver']}"], lock_fd)  # fmt: skip
            plane.kubectl("apply", "-f", "-", input=_service_and_slice(
                "default", "kubernetes", None,
                [{"name": "https", "port": 443, "targetPort": API_PORT_ON_BRIDGE, "protocol": "TCP"}], BRIDGE_IP))
            self._spawn("kubelet", [
                str(cp.tool("kubelet")), "--config", str(self.state / "kubelet.yaml"),
                "--kubeconfig", str(self.state / "kubelet.kubeconfig"),
                "--root-dir", str(self.kubelet_root), "--cert-dir", str(self.state / "pki"),
                "--hostname-override", NODE_NAME, "--node-ip", BRIDGE_IP,
                "--node-labels", "type=real,gameplane.io/node=real", "--v", "1",
            ], lock_fd)  # fmt: skip
            self._spawn("kube-proxy", [str(cp.tool("kube-proxy")), "--config", str(self.state / "kube-proxy.yaml"),
                                       "--v", "1"], lock_fd)  # fmt: skip
            self._wait("node Ready", self._ready, timeout)
            # NetworkPolicy enforcement only: routing is the bridge's, Services are kube-proxy's.
            # It identifies itself by the Node object, so it starts once the kubelet registered it.
            self._spawn("kube-router", [
                str(cp.tool("kube-router")), "--kubeconfig", str(self.state / "kube-router.kubeconfig"),
                "--hostname-override", NODE_NAME, "--run-firewall=true", "--run-router=false",
                "--run-service-proxy=false", "--enable-cni=false", "--enable-pod-egress=false",
                "--service-cluster-ip-range", cp.SERVICE_CIDR, "--iptables-sync-period", "30s",
                "--health-port", str(self._ports["netpol-health"]), "--metrics-port", "0", "--v", "1",
            ], lock_fd)  # fmt: skip
            self._wait("network policies enforced", _netpol_chains_ready, 60)
            self._deploy_dns(coredns, timeout)
            (self.state / "ports.json").write_text(json.dumps(self._ports))
        print(f"node {NODE_NAME} Ready in {time.monotonic() - t0:.1f}s (images loaded after {t_images:.1f}s)",
              file=sys.stderr)  # fmt: skip
        return self

    def _deploy_dns(self, image: str, timeout: float) -> None:
        manifest = (HERE / "manifests" / "coredns.yaml").read_text()
        manifest = manifest.replace("COREDNS_IMAGE", image).replace("DNS_SERVICE_IP", DNS_SERVICE_IP)
        plane = self.plane
        plane.kubectl("apply", "-f", "-", input=manifest)
        self._wait("CoreDNS Pod ready", lambda: plane.kubectl(
            "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=2s", check=False,
        ).returncode == 0, timeout)  # fmt: skip

    def deploy_metrics_server(self, timeout: float = 120) -> None:
        """metrics-server as a Pod on this node; returns once `kubectl top node` has numbers."""
        manifest = (HERE / "manifests" / "metrics-server.yaml").read_text()
        plane = self.plane
        manifest = manifest.replace("METRICS_SERVER_IMAGE", _images().BY_KEY["metrics-server"].tag)
        plane.kubectl("apply", "-f", "-", input=manifest)
        self._wait("metrics.k8s.io serving node metrics",
                   lambda: plane.kubectl("top", "node", NODE_NAME, check=False).returncode == 0, timeout)  # fmt: skip

    def _ctr(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args]

    def _ready(self) -> bool:
        out = self.plane.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if out.returncode != 0:
            return False
        conds = json.loads(out.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def stop(self, grace: float = 30) -> list[str]:
        """Stop the node and clean the host; returns what was still left afterwards (empty = clean)."""
        plane_alive = (self.plane_state / "cluster.json").exists() and self.plane.alive("kube-apiserver")
        if plane_alive and self.alive("kubelet"):
            self._drain(grace)
        for name in ("kube-router", "kube-proxy", "api-forward", "kubelet", "containerd"):
            _stop_pid(self.pids.get(name))
        self.pids = {}
        if self.state.exists():
            self._save()
        clean_host(self)
        return leftovers()

    def _drain(self, grace: float) -> None:
        """Delete every Pod bound to this node through the kubelet, so that each sandbox is torn
        down properly (CNI DEL releases its address, veth and chains). The caller has stopped the
        controllers or is about to stop everything, so replacements do not matter."""
        plane = self.plane
        plane.kubectl("delete", "pods", "--all-namespaces", "--field-selector", f"spec.nodeName={NODE_NAME}",
                      "--grace-period=1", "--wait=false", check=False)  # fmt: skip
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            out = _run(self._ctr("tasks", "list", "-q"), check=False)
            if out.returncode != 0 or not out.stdout.strip():
                return
            time.sleep(0.5)


def _images() -> ModuleType:
    from hack import images  # the node imports images only to load them; images needs no node

    return images


def _write_kubeconfig(path: Path, server: str, pki: Path, stem: str) -> None:
    import yaml

    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "gameplane",
                      "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": stem, "user": {"client-certificate": str(pki / f"{stem}.crt"),
                                          "client-key": str(pki / f"{stem}.key")}}],
        "contexts": [{"name": "gameplane", "context": {"cluster": "gameplane", "user": stem}}],
        "current-context": "gameplane",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as r:
        return bool(r.status == 200)


def _ensure_bridge() -> None:
    """The pod bridge with its gateway address, created before CNI would, so that the API
    forwarder and CoreDNS can bind the address before the first Pod exists."""
    if _run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    _run(["ip", "link", "set", BRIDGE, "mtu", str(MTU), "up"])
    addr = f"{BRIDGE_IP}/{POD_CIDR.split('/')[1]}"
    if addr not in _run(["ip", "-o", "addr", "show", "dev", BRIDGE]).stdout:
        _run(["ip", "addr", "add", addr, "dev", BRIDGE])
    # Service IPs exist only in kube-proxy's rules. Without a route of their own, a packet for a
    # Service with no ready endpoint (a Pod being replaced) follows the default route off the
    # machine, and whatever answers there (this sandbox's egress proxy answers HTTP 404) looks
    # like the service. Routed onto the bridge, it stays on the node. Goes with the bridge.
    _run(["ip", "route", "replace", cp.SERVICE_CIDR, "dev", BRIDGE])


def _stop_pid(pid: int | None, grace: float = 10) -> None:
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


# ---------------------------------------------------------------------------------------------
# Cleaning the host
# ---------------------------------------------------------------------------------------------
def _our_processes() -> list[tuple[int, str]]:
    """Processes of a node (ours, or a killed run's): recognised by binary and arguments."""
    marks = (str(RUN), BRIDGE_IP + ",fork", "/kubelet-v", "/kube-proxy-v", "/kube-router-v", "/coredns-v",
             "/node/containerd.toml")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # containerd's shims carry its socket path; our binaries come from the versioned cache.
        if any(m in cmd for m in marks) and "node.py" not in cmd:
            found.append((int(entry.name), cmd.strip()[:200]))
    return found


def _container_processes() -> list[tuple[int, str]]:
    """Processes in the kubelet's pod cgroups (containers whose shim is gone)."""
    pids: set[int] = set()
    for group in _kubepods_cgroups():
        for procs in group.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(x) for x in procs.read_text().split())
    return [(pid, f"container process in {group.name}") for pid in sorted(pids)]


def _mounts(prefixes: tuple[str, ...]) -> list[str]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefixes):
            out.append(point)
    return out


def _mount_prefixes(node: Node | None) -> tuple[str, ...]:
    prefixes = [str(RUN) + "/", "/run/netns/cni-", "/var/run/netns/cni-"]
    if node is not None:
        prefixes.append(str(node.state) + "/")
    return tuple(prefixes)


def _chains() -> list[tuple[str, str]]:
    found = []
    for table in ("filter", "nat", "mangle"):
        out = _run(["iptables", "-t", table, "-S"], check=False).stdout
        for line in out.splitlines():
            if line.startswith("-N ") and line.split()[1].startswith(("KUBE-", "CNI-")):
                found.append((table, line.split()[1]))
    return found


def _netpol_chains_ready() -> bool:
    """kube-router has hooked its chains into the filter table (policies apply from now on)."""
    rules = _run(["iptables", "-t", "filter", "-S", "FORWARD"], check=False).stdout
    return "KUBE-ROUTER-FORWARD" in rules


def _ipsets() -> list[str]:
    if shutil.which("ipset") is None:
        return []
    names = _run(["ipset", "list", "-n"], check=False).stdout.split()
    return [n for n in names if n.startswith(IPSET_PREFIXES)]


def _kubepods_cgroups() -> list[Path]:
    root = Path("/sys/fs/cgroup")
    if not root.exists():
        return []
    return [p for ctrl in root.iterdir() if ctrl.is_dir() for p in ctrl.glob("kubepods*")]


def leftovers() -> list[str]:
    """Everything a node leaves on the host that `down` should have removed (empty when clean)."""
    out = [f"process {pid}: {cmd}" for pid, cmd in _our_processes() + _container_processes()]
    out += [f"mount {m}" for m in _mounts(_mount_prefixes(None))]
    if _run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        out.append(f"bridge {BRIDGE}")
    out += [f"netns {n}" for n in _netns()]
    out += [f"iptables -t {t} chain {c}" for t, c in _chains()]
    out += [f"ipset {s}" for s in _ipsets()]
    out += [f"cgroup {p}" for p in _kubepods_cgroups()]
    if HOST_RECORD.exists():
        out.append(f"unrestored host settings ({HOST_RECORD})")
    return out


def _netns() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.iterdir() if p.name.startswith("cni-")) if d.exists() else []


def clean_host(node: Node | None = None) -> None:
    """Remove what a node leaves behind: processes, mounts, network namespaces, the bridge,
    iptables chains, cgroups; then put the recorded sysctls back."""
    for pid, _ in _our_processes() + _container_processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (_our_processes() or _container_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    # Deepest first, lazily: a mount can stay busy for a moment after its last process died.
    for point in sorted(_mounts(_mount_prefixes(node)), key=len, reverse=True):
        _run(["umount", "-l", point], check=False)
    for name in _netns():
        _run(["ip", "netns", "delete", name], check=False)
    if _run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        _run(["ip", "link", "delete", BRIDGE], check=False)
    if cp.TOOLS["kube-proxy"].built():
        _run([str(cp.tool("kube-proxy")), "--cleanup"], check=False)
    _remove_chains()
    for name in _ipsets():  # only once no rule refers to them
        _run(["ipset", "destroy", name], check=False)
    for group in sorted(_kubepods_cgroups(), key=lambda p: len(p.parts), reverse=True):
        for sub in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            group.rmdir()
    restore_host()
    if RUN.exists():
        shutil.rmtree(RUN, ignore_errors=True)


def _remove_chains() -> None:
    """Rules that jump to KUBE-*/CNI-* chains first (a chain in use cannot be deleted), then the
    chains themselves."""
    for table in ("filter", "nat", "mangle"):
        rules = _run(["iptables", "-t", table, "-S"], check=False).stdout.splitlines()
        for rule in rules:
            parts = shlex.split(rule)  # comments are quoted and hold spaces (kube-router's do)
            if parts[:1] == ["-A"] and ("-j" in parts) and parts[parts.index("-j") + 1].startswith(("KUBE-", "CNI-")):
                if not parts[1].startswith(("KUBE-", "CNI-")):
                    _run(["iptables", "-t", table, "-D", *parts[1:]], check=False)
        chains = [line.split()[1] for line in rules if line.startswith("-N ")
                  and line.split()[1].startswith(("KUBE-", "CNI-"))]  # fmt: skip
        for chain in chains:
            _run(["iptables", "-t", table, "-F", chain], check=False)
        for chain in chains:
            _run(["iptables", "-t", table, "-X", chain], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "clean", "leftovers"])
    parser.add_argument("--state", type=Path, default=cp.STATE, help="the control plane's state directory")
    args = parser.parse_args(argv)
    if args.command == "up":
        Node(plane_state=args.state).start()
        return 0
    if args.command == "down":
        left = Node.load(args.state).stop()
    elif args.command == "clean":
        with machine_lock():
            clean_host()
        left = leftovers()
    else:
        left = leftovers()
    for item in left:
        print(f"left behind: {item}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
