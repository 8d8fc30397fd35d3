"""The NetworkPolicies of the umbrella chart, rendered by the real `helm`, evaluated as a graph.

A small evaluator applies Kubernetes' NetworkPolicy semantics (a connection needs an ingress allow
at the destination and an egress allow at the source when policies select them) to the rendered
objects, for a set of Pods: the platform's services, its PostgreSQL and NATS, and outsiders (a Pod
of another namespace, a stray Pod in the platform's namespace, the ingress controller, Prometheus).
The expected graph is written out below by hand from the design (who calls whom), not computed
from the catalogue; the catalogue is compared with the chart's copy of the call graph separately.

Nothing here enforces packets: the bridge CNI of the real node does not implement NetworkPolicy
(docs/architecture.md, "Network policy").
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import helm

from gameplane import catalog

REPO = Path(__file__).resolve().parents[2]
NS = "casino"
RELEASE = "p"


def helm_template(*args: str, chart: str = "charts/gameplane") -> list[dict[str, Any]]:
    out = subprocess.run([str(helm()), "template", RELEASE, chart, "-n", NS, *args], capture_output=True,
                         text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    ip: str = "10.0.0.1"


@dataclass(frozen=True)
class Address:  # something outside the cluster, by IP
    ip: str
    name: str = ""


NS_LABELS = {ns: {"kubernetes.io/metadata.name": ns}
             for ns in (NS, "other", "ingress-nginx", "monitoring", "kube-system")}


def _service(name: str) -> Pod:
    return Pod(name, NS, {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": RELEASE,
                          "app.kubernetes.io/part-of": "gameplane"}, {"http": 8000, "metrics": 9090})


PLATFORM = {n: _service(n) for n in ("gateway", "players", "wallet", "games", "sessions")}
POSTGRES = Pod("postgres", NS, {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": RELEASE,
                                "app.kubernetes.io/part-of": "gameplane"}, {"postgres": 5432})
NATS = Pod("nats", NS, {"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": RELEASE,
                        "app.kubernetes.io/part-of": "gameplane"}, {"client": 4222})
# Outsiders. The stray Pod carries the platform's instance label but names itself as nothing.
STRAY = Pod("stray", NS, {"app.kubernetes.io/instance": RELEASE, "app": "debug"})
INTRUDER = Pod("intruder", "other", {"app.kubernetes.io/name": "wallet", "app.kubernetes.io/instance": RELEASE})
INGRESS = Pod("ingress", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
PROMETHEUS = Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
DNS = Pod("dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        present, value = e["key"] in labels, labels.get(e["key"])
        ok = {"In": present and value in e["values"], "NotIn": not present or value not in e["values"],
              "Exists": present, "DoesNotExist": not present}[e["operator"]]  # fmt: skip
        if not ok:
            return False
    return True


def _peer_matches(peer: dict[str, Any], policy_ns: str, other: Pod | Address) -> bool:
    if "ipBlock" in peer:
        if isinstance(other, Pod):
            return False  # Pod-to-Pod traffic is never meant to ride an ipBlock rule here
        net = ipaddress.ip_network(peer["ipBlock"]["cidr"])
        ip = ipaddress.ip_address(other.ip)
        excepted = any(ip in ipaddress.ip_network(c) for c in peer["ipBlock"].get("except", []))
        return ip in net and not excepted
    if isinstance(other, Address):
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], NS_LABELS[other.namespace]):
            return False
    elif other.namespace != policy_ns:
        return False
    return "podSelector" not in peer or _selects(peer["podSelector"], other.labels)


def _port_matches(rule_ports: list[dict[str, Any]] | None, dest: Pod | Address, port: int) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        want = p["port"]
        if isinstance(want, str):
            if isinstance(dest, Pod) and dest.ports.get(want) == port:
                return True
        elif want == port:
            return True
    return False


def _allowed_one_way(policies: list[dict[str, Any]], pod: Pod, other: Pod | Address, dest: Pod | Address,
                     port: int, direction: str) -> bool:
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [p for p in policies if p["metadata"]["namespace"] == pod.namespace
                 and direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod.labels)]
    if not selecting:
        return True  # no policy selects the Pod in this direction: everything is allowed
    for p in selecting:
        for rule in p["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(peer, pod.namespace, other) for peer in peers)) \
                    and _port_matches(rule.get("ports"), dest, port):
                return True
    return False


def allowed(policies: list[dict[str, Any]], src: Pod, dst: Pod | Address, port: int) -> bool:
    out = _allowed_one_way(policies, src, dst, dst, port, "Egress")
    if isinstance(dst, Pod):
        out = out and _allowed_one_way(policies, dst, src, dst, port, "Ingress")
    return out


def policies_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "NetworkPolicy"
            and "helm.sh/hook" not in (d["metadata"].get("annotations") or {})]


# -- the expected graph, written out ----------------------------------------------------------------
# (source, destination) pairs allowed on the API port 8000; every other pair must be refused.
API_CALLS = {
    ("gateway", "players"), ("gateway", "wallet"), ("gateway", "games"), ("gateway", "sessions"),
    ("games", "wallet"), ("games", "sessions"),
    ("sessions", "games"), ("sessions", "players"),
}
DATABASE_USERS = {"players", "wallet", "games", "sessions"}


@pytest.fixture(scope="module")
def default_policies() -> list[dict[str, Any]]:
    return policies_of(helm_template())


def test_services_reach_exactly_their_callees_on_the_api_port(default_policies: list[dict[str, Any]]) -> None:
    got = {(s, d) for s in PLATFORM for d in PLATFORM if s != d
           and allowed(default_policies, PLATFORM[s], PLATFORM[d], 8000)}
    assert got == API_CALLS


def test_outsiders_reach_no_api_port_and_only_the_ingress_controller_reaches_the_gateway(
        default_policies: list[dict[str, Any]]) -> None:
    for outsider in (STRAY, INTRUDER, PROMETHEUS, DNS):
        for svc in PLATFORM.values():
            assert not allowed(default_policies, outsider, svc, 8000), (outsider.name, svc.name)
    assert allowed(default_policies, INGRESS, PLATFORM["gateway"], 8000)
    for name in ("players", "wallet", "games", "sessions"):
        assert not allowed(default_policies, INGRESS, PLATFORM[name], 8000), name


def test_only_prometheus_reaches_the_metrics_port(default_policies: list[dict[str, Any]]) -> None:
    for svc in PLATFORM.values():
        assert allowed(default_policies, PROMETHEUS, svc, 9090), svc.name
        for other in (STRAY, INTRUDER, INGRESS, *PLATFORM.values()):
            if other is not svc:
                assert not allowed(default_policies, other, svc, 9090), (other.name, svc.name)


def test_postgres_and_nats_admit_only_the_services_that_use_them(default_policies: list[dict[str, Any]]) -> None:
    for backend, port in ((POSTGRES, 5432), (NATS, 4222)):
        got = {n for n, svc in PLATFORM.items() if allowed(default_policies, svc, backend, port)}
        assert got == DATABASE_USERS, backend.name
        for outsider in (STRAY, INTRUDER, PROMETHEUS, INGRESS):
            assert not allowed(default_policies, outsider, backend, port), (outsider.name, backend.name)


def test_egress_is_denied_except_dns_and_what_the_spec_names(default_policies: list[dict[str, Any]]) -> None:
    internet = Address("93.184.216.34", "internet")
    for svc in [*PLATFORM.values(), POSTGRES, NATS]:
        for port in (443, 80, 5432, 4222):
            assert not allowed(default_policies, svc, internet, port), (svc.name, port)
    for svc in PLATFORM.values():
        assert allowed(default_policies, svc, DNS, 53)
    # The backends reach nothing at all, DNS included.
    assert not allowed(default_policies, POSTGRES, DNS, 53)
    assert not allowed(default_policies, NATS, PLATFORM["wallet"], 8000)


def test_a_default_deny_covers_every_platform_pod(default_policies: list[dict[str, Any]]) -> None:
    deny = [p for p in default_policies if p["metadata"]["name"] == f"{RELEASE}-default-deny"]
    assert len(deny) == 1 and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny[0]["spec"] and "egress" not in deny[0]["spec"]
    # Negative control of the evaluator: with only the default deny, nothing flows at all.
    assert not any(allowed(deny, a, b, 8000) for a in PLATFORM.values() for b in PLATFORM.values() if a is not b)
    assert not allowed(deny, PROMETHEUS, PLATFORM["wallet"], 9090)


def test_the_evaluator_would_see_the_old_wide_open_policy() -> None:
    """Negative control: the policy the chart shipped before (every platform Pod and every
    namespace on the API port) must fail the graph checks above."""
    wide = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "old", "namespace": NS},
            "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": RELEASE}},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": "http"}]}]}}
    assert allowed([wide], INTRUDER, PLATFORM["wallet"], 8000)
    pairs = {(s, d) for s in PLATFORM for d in PLATFORM if s != d and allowed([wide], PLATFORM[s], PLATFORM[d], 8000)}
    assert pairs != API_CALLS


def test_spec_settings_move_the_allows() -> None:
    docs = policies_of(helm_template(
        "--set", "global.monitoring.scrapeFrom.namespaces={observability}",
        "--set", "global.monitoring.scrapeFrom.podLabels.app=prom",
        "--set", "global.networkPolicy.ingressFrom.namespaces={edge}",
        "--set", "postgres.enabled=false", "--set", "global.database.secretName=db",
        "--set", "global.networkPolicy.egress.database.cidrs={10.20.0.0/16}",
        "--set", "nats.enabled=false", "--set", "global.natsUrl=nats://nats.example:4222",
        "--set", "global.networkPolicy.egress.messaging.cidrs={10.30.0.0/24}",
    ))
    NS_LABELS.update({"observability": {"kubernetes.io/metadata.name": "observability"},
                      "edge": {"kubernetes.io/metadata.name": "edge"}})
    prom = Pod("prom", "observability", {"app": "prom"})
    other_prom = Pod("prom2", "observability", {"app": "grafana"})
    edge = Pod("edge", "edge", {"app": "envoy"})
    wallet = PLATFORM["wallet"]
    assert allowed(docs, prom, wallet, 9090) and not allowed(docs, other_prom, wallet, 9090)
    assert not allowed(docs, PROMETHEUS, wallet, 9090)  # the default namespace no longer counts
    assert allowed(docs, edge, PLATFORM["gateway"], 8000) and not allowed(docs, INGRESS, PLATFORM["gateway"], 8000)
    assert allowed(docs, wallet, Address("10.20.3.4"), 5432)
    assert not allowed(docs, wallet, Address("10.21.3.4"), 5432)
    assert allowed(docs, wallet, Address("10.30.0.9"), 4222)
    assert not allowed(docs, wallet, Address("10.20.3.4"), 4222)
    assert not allowed(docs, PLATFORM["gateway"], Address("10.20.3.4"), 5432)  # no database of its own
    assert not any(d["metadata"]["name"] in (f"{RELEASE}-postgres", f"{RELEASE}-nats") for d in docs)


def test_providers_egress_by_cidr_and_port() -> None:
    docs = policies_of(helm_template(
        "--set", "games.providers[0].name=studio", "--set", "games.providers[0].baseUrl=https://studio.example",
        "--set", "games.providers[0].secretName=studio",
        "--set", "global.networkPolicy.egress.providers.cidrs={203.0.113.0/24}",
    ))
    assert allowed(docs, PLATFORM["games"], Address("203.0.113.7"), 443)
    assert not allowed(docs, PLATFORM["games"], Address("203.0.113.7"), 80)
    assert not allowed(docs, PLATFORM["games"], Address("198.51.100.1"), 443)
    assert not allowed(docs, PLATFORM["wallet"], Address("203.0.113.7"), 443)


def test_the_chart_call_graph_is_the_catalogue() -> None:
    values = yaml.safe_load((REPO / "charts" / "gameplane" / "values.yaml").read_text())
    chart = {k: sorted(v) for k, v in values["global"]["calls"].items()}
    assert chart == {s.name: sorted(s.calls) for s in catalog.SERVICES if s.calls}


def test_the_graph_above_is_the_catalogue_among_built_services() -> None:
    # The hand-written expectation and the catalogue agree: a change of either must update both.
    built = set(PLATFORM)
    assert API_CALLS == {(s.name, c) for s in catalog.SERVICES if s.name in built for c in s.calls if c in built}


def test_a_gaming_platform_spec_reaches_the_policies_through_the_operator(tmp_path: Path) -> None:
    from gameplane_operator.values import chart_values

    spec = {
        "version": "0.1.0",
        "gateway": {"trustedProxyHops": 2, "ingressFrom": {"namespaces": ["edge"]}},
        "monitoring": {"scrapeFrom": {"namespaces": ["observability"], "podLabels": {"app": "prom"}}},
        "database": {"mode": "external", "external": {
            "secretRef": {"name": "db", "key": "url"},
            "tls": {"mode": "verify-full", "caSecretRef": {"name": "db-ca"}}}},
        "egress": {"database": {"cidrs": ["10.20.0.0/16"], "ports": [5432]}},
    }
    values = chart_values("p", spec, {"service-token-secret": "s" * 32, "player-token-secret": "p" * 32,
                                      "postgres-password": "pw"})
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    docs = helm_template("-f", str(path))
    policies = policies_of(docs)
    NS_LABELS.update({"observability": {"kubernetes.io/metadata.name": "observability"},
                      "edge": {"kubernetes.io/metadata.name": "edge"}})
    wallet = PLATFORM["wallet"]
    assert allowed(policies, Pod("prom", "observability", {"app": "prom"}), wallet, 9090)
    assert not allowed(policies, PROMETHEUS, wallet, 9090)
    assert allowed(policies, Pod("envoy", "edge", {}), PLATFORM["gateway"], 8000)
    assert not allowed(policies, INGRESS, PLATFORM["gateway"], 8000)
    assert allowed(policies, wallet, Address("10.20.0.5"), 5432)
    assert not allowed(policies, wallet, Address("10.99.0.5"), 5432)
    gateway_cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "p-gateway")
    assert gateway_cm["data"]["GP_GATEWAY_FORWARDED_FOR_HOPS"] == "2"
    wallet_deploy = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "p-wallet")
    env = {e["name"]: e.get("value") for e in wallet_deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GP_WALLET_DATABASE_URL"].endswith(
        "/gp_wallet?sslmode=verify-full&sslrootcert=/etc/gameplane/database-ca/ca.crt")


# -- payments, risk and the PSP simulator ------------------------------------------------------------
PAYMENT_SIDE = {n: _service(n) for n in ("payments", "risk", "psp")}
# Written out from issue 14's design: players' and PSPs' traffic reaches payments only through the
# gateway; payments calls the wallet, players, risk and (in development) the PSP simulator's API;
# the simulator's webhooks go to the gateway; real PSPs are outside, by CIDR and port.
PAYMENT_CALLS = {("gateway", "payments"), ("payments", "wallet"), ("payments", "players"), ("payments", "risk"),
                 ("payments", "psp"), ("psp", "gateway")}
PSP_CIDR = "203.0.113.0/24"


def _payments_platform(*extra: str) -> list[dict[str, Any]]:
    # Until their code lands the umbrella's schema refuses enabling them (the catalogue's `built`);
    # the templates render them the same either way.
    unbuilt = not all(catalog.get(n).built for n in PAYMENT_SIDE)
    return policies_of(helm_template(
        *(["--skip-schema-validation"] if unbuilt else []),
        "--set", "payments.enabled=true", "--set", "risk.enabled=true", "--set", "psp.enabled=true",
        "--set", "payments.paymentProviders[0].name=payfast",
        "--set", "payments.paymentProviders[0].baseUrl=https://api.payfast.example",
        "--set", "payments.paymentProviders[0].secretName=payfast-keys", *extra))


@pytest.fixture(scope="module")
def payment_policies() -> list[dict[str, Any]]:
    return _payments_platform("--set", f"global.networkPolicy.egress.paymentProviders.cidrs={{{PSP_CIDR}}}")


def test_payments_risk_and_the_psp_simulator_reach_exactly_their_callees(
        payment_policies: list[dict[str, Any]]) -> None:
    everyone = {**PLATFORM, **PAYMENT_SIDE}
    got = {(s, d) for s in everyone for d in everyone if s != d
           and allowed(payment_policies, everyone[s], everyone[d], 8000)}
    assert got == API_CALLS | PAYMENT_CALLS
    for outsider in (STRAY, INTRUDER, INGRESS, PROMETHEUS):
        for name in PAYMENT_SIDE:
            assert not allowed(payment_policies, outsider, PAYMENT_SIDE[name], 8000), (outsider.name, name)


def test_payments_reaches_its_psps_by_cidr_and_port_and_nothing_else_reaches_them(
        payment_policies: list[dict[str, Any]]) -> None:
    payments = PAYMENT_SIDE["payments"]
    assert allowed(payment_policies, payments, Address("203.0.113.7"), 443)
    assert not allowed(payment_policies, payments, Address("203.0.113.7"), 80)
    assert not allowed(payment_policies, payments, Address("198.51.100.1"), 443)
    # nobody else: not games (its providers have their own rule), not the simulator, not risk
    for name, pod in [("games", PLATFORM["games"]), ("wallet", PLATFORM["wallet"]), *PAYMENT_SIDE.items()]:
        if name != "payments":
            assert not allowed(payment_policies, pod, Address("203.0.113.7"), 443), name
    # payments and risk keep their own database and NATS; the simulator has neither
    for name in ("payments", "risk"):
        assert allowed(payment_policies, PAYMENT_SIDE[name], POSTGRES, 5432)
        assert allowed(payment_policies, PAYMENT_SIDE[name], NATS, 4222)
    assert not allowed(payment_policies, PAYMENT_SIDE["psp"], POSTGRES, 5432)


def test_payments_without_psps_has_no_egress_to_the_outside() -> None:
    """Negative control: the egress rule exists because payments names PSPs, and only then."""
    without = policies_of(helm_template(
        *(["--skip-schema-validation"] if not catalog.get("payments").built else []),
        "--set", "payments.enabled=true",
        "--set", f"global.networkPolicy.egress.paymentProviders.cidrs={{{PSP_CIDR}}}"))
    assert not allowed(without, PAYMENT_SIDE["payments"], Address("203.0.113.7"), 443)
    # and the game providers' egress setting does not open the PSPs to payments
    games_only = _payments_platform("--set", "global.networkPolicy.egress.providers.cidrs={198.51.100.0/24}",
                                    "--set", f"global.networkPolicy.egress.paymentProviders.cidrs={{{PSP_CIDR}}}")
    assert not allowed(games_only, PAYMENT_SIDE["payments"], Address("198.51.100.1"), 443)
    assert allowed(games_only, PAYMENT_SIDE["payments"], Address("203.0.113.7"), 443)


def test_games_reaches_the_studio_simulator_award_api_and_nobody_else_does() -> None:
    # Free-spin awards: games calls the in-cluster RGS simulator's API (a real studio is outside, by CIDR).
    rgs = _service("rgs")
    docs = policies_of(helm_template("--set", "rgs.enabled=true"))
    assert allowed(docs, PLATFORM["games"], rgs, 8000)
    for name in ("gateway", "players", "wallet", "sessions"):
        assert not allowed(docs, PLATFORM[name], rgs, 8000), name
    assert allowed(docs, rgs, PLATFORM["gateway"], 8000) and not allowed(docs, rgs, PLATFORM["games"], 8000)
