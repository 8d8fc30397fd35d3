"""GamingPlatform spec -> values of the `gameplane` umbrella chart.

This is the only translation between the custom resource and the charts: every manifest comes
from the charts, the operator only decides their values. Pure functions, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gameplane import catalog

ALL_SERVICES = catalog.NAMES
# Services without a database of their own (everything else owns gp_<service>).
STATELESS = frozenset(s.name for s in catalog.SERVICES if not s.database)
MANAGED_BY = "gameplane-operator"
# The service image's repository: the CRD's default for spec.image.repository, and the chart's.
DEFAULT_REPOSITORY = "gameplane/gameplane"
SECRETS_SUFFIX = "-secrets"
# The wire dialects the PSP simulator (gameplane.simulators.psp) speaks, each as the PSP of that name.
PSP_SIMULATOR_DIALECTS = ("simpsp", "cardgw")

Values = dict[str, Any]
# spec.scheduling / services[].scheduling -> the charts' scheduling keys (the same names).
SCHEDULING_KEYS = ("nodeSelector", "tolerations", "affinity", "priorityClassName", "topologySpread")


@dataclass(frozen=True)
class Defaults:
    """Operator-wide defaults for what a platform leaves unset (operator chart: platformDefaults).

    Empty means the umbrella chart's own default (the public postgres and nats images, the
    service image gameplane/gameplane:<spec.version>).
    """

    postgres_image: str = ""
    nats_image: str = ""
    # The service image of platforms whose spec.image names neither a repository nor a tag (a dev
    # loop points every platform at the image it just built).
    image_repository: str = ""
    image_tag: str = ""
    # Development only: every service of every platform runs from a synced copy of its sources
    # with --reload (the umbrella chart's global.dev.reload).
    dev_reload: bool = False


def _tracing(spec: dict[str, Any]) -> Values:
    """spec.monitoring.tracing -> global.tracing (the services' GP_<SVC>_OTLP_ENDPOINT and
    _TRACE_SAMPLING_RATIO). The CRD defaults samplingRatio; a platform stored before that field
    existed gets the same 1 %."""
    return {"endpoint": spec.get("endpoint", ""), "samplingRatio": float(spec.get("samplingRatio", 0.01))}


def _scheduling(block: dict[str, Any] | None) -> Values:
    """The scheduling keys a spec block sets, unchanged: the chart treats a key that is present
    (even empty) as an override, so keys the user left out must stay out."""
    block = block or {}
    return {k: block[k] for k in SCHEDULING_KEYS if k in block}


def enabled_services(spec: dict[str, Any]) -> list[str]:
    """Names of the services the platform runs, in the canonical order."""
    overrides = {s["name"]: s for s in spec.get("services") or []}
    out = []
    for svc in catalog.SERVICES:
        # The CRD refuses enabling a service that is not built; the check here keeps a platform
        # created before that rule from rendering a Deployment of code that does not exist.
        if svc.built and overrides.get(svc.name, {}).get("enabled", svc.enabled_by_default):
            out.append(svc.name)
    return out


def _service_values(name: str, entry: dict[str, Any], enabled: bool, spec: dict[str, Any]) -> Values:
    v: Values = {"name": name, "enabled": enabled}
    if name in STATELESS:
        v["database"] = {"enabled": False}
    if "replicas" in entry:
        v["replicas"] = entry["replicas"]
    if entry.get("resources"):
        v["resources"] = entry["resources"]
    image = entry.get("image") or {}
    if image.get("repository") or image.get("tag"):
        v["image"] = {k: image[k] for k in ("repository", "tag") if image.get(k)}
    auto = entry.get("autoscaling") or {}
    if auto.get("enabled"):
        v["autoscaling"] = {
            "enabled": True,
            "minReplicas": auto.get("minReplicas", 1),
            "maxReplicas": auto.get("maxReplicas", 3),
            "cpuTargetPercent": auto.get("cpuTargetPercent", 70),
            "rpsTarget": auto.get("rpsTarget", 0),
        }
    if name == "gateway":
        v["exposed"] = True
        gw = spec.get("gateway") or {}
        v["trustedProxyHops"] = gw.get("trustedProxyHops", 0)
        ing, route = gw.get("ingress") or {}, gw.get("gatewayAPI") or {}
        if ing.get("enabled"):
            v["ingress"] = {
                "enabled": True,
                "host": gw.get("host", ""),
                "className": ing.get("className", ""),
                "tlsSecretName": ing.get("tlsSecretName", ""),
            }
        if route.get("enabled"):
            v["httpRoute"] = {
                "enabled": True,
                "host": gw.get("host", ""),
                "parentName": route.get("parentName", ""),
                "parentNamespace": route.get("parentNamespace", ""),
            }
    site = (spec.get("sites") or {}).get(name) if name in SITES else None
    if site and (site.get("ingress") or {}).get("enabled"):
        ing = site["ingress"]
        v["ingress"] = {"enabled": True, "host": site.get("host", ""), "className": ing.get("className", ""),
                        "tlsSecretName": ing.get("tlsSecretName", "")}
    if env := browser_env(name, spec):
        v["extraEnv"] = [{"name": k, "value": val} for k, val in env.items()]
    # The RGS simulator signs as the provider named "rgs": it gets that entry's Secret, nothing else.
    rgs = [p for p in spec.get("providers") or [] if p["name"] == "rgs"]
    providers = {"games": spec.get("providers"), "rgs": rgs}.get(name)
    if providers:
        v["providers"] = _integrations(providers)
    # Payments verifies and calls every PSP; the PSP simulator signs as the PSPs named after its
    # dialects and gets those entries' Secrets, nothing else.
    psps = spec.get("paymentProviders") or []
    payment_providers = {"payments": psps,
                         "psp": [p for p in psps if p["name"] in PSP_SIMULATOR_DIALECTS]}.get(name)
    if payment_providers:
        v["paymentProviders"] = _integrations(payment_providers)
    scheduling = _scheduling(entry.get("scheduling"))
    if scheduling:
        v["scheduling"] = scheduling
    # The operator applies test hooks never; `helm test` is for chart users.
    v["tests"] = {"enabled": False}
    return v


SITES = ("web", "backoffice")


def site_url(spec: dict[str, Any], name: str) -> str | None:
    """https://<host> (http:// when exposed without a TLS Secret) of spec.sites.<name>, if it has a host."""
    site = (spec.get("sites") or {}).get(name) or {}
    if not site.get("host"):
        return None
    ing = site.get("ingress") or {}
    scheme = "http" if ing.get("enabled") and not ing.get("tlsSecretName") else "https"
    return f"{scheme}://{site['host']}"


def browser_env(name: str, spec: dict[str, Any]) -> dict[str, str]:
    """The browser-facing addresses a service needs (what a player's browser opens, never an in-cluster
    name): the site's own address and, from it, where PSPs send players back and which parent the
    studio's game pages post to; each provider's game pages; each PSP's hosted page."""
    web = site_url(spec, "web")
    games = {p["name"]: p["gameUrl"] for p in spec.get("providers") or [] if p.get("gameUrl")}
    hosted = [p["hostedUrl"] for p in spec.get("paymentProviders") or [] if p.get("hostedUrl")]
    env: dict[str, str] = {}
    if name == "web":
        # No studio or PSP listed means none: the development defaults (127.0.0.1) never reach a cluster.
        env["GP_WEB_GAME_URLS"] = json.dumps(games)
        env["GP_WEB_PSP_URLS"] = json.dumps(hosted)
        if web:
            env["GP_WEB_PUBLIC_URL"] = web
        if ((spec.get("sites") or {}).get("web") or {}).get("ingress", {}).get("enabled"):
            env["GP_WEB_FORWARDED_FOR_HOPS"] = "1"  # the ingress controller's hop
    elif name == "sessions" and games:
        env["GP_SESSIONS_GAME_URLS"] = json.dumps(games)
    elif name == "payments" and web:
        env["GP_PAYMENTS_RETURN_URL"] = f"{web}/cashier/return?reference={{reference}}"
    elif name == "rgs" and web:
        env["GP_RGS_ALLOWED_PARENTS"] = json.dumps([web])
    return env


def _integrations(entries: list[dict[str, Any]]) -> list[Values]:
    """spec providers / paymentProviders -> the chart's {name, baseUrl, secretName}: a Secret's name,
    never a key (the chart mounts the Secret; no key passes through the operator)."""
    return [{"name": p["name"], "baseUrl": p["baseUrl"], "secretName": p["secretRef"]["name"]} for p in entries]


def network_policy_values(spec: dict[str, Any]) -> Values:
    """spec.gateway.ingressFrom and spec.egress -> global.networkPolicy (what the spec leaves out
    keeps the chart's default)."""
    out: Values = {"enabled": True}
    if src := (spec.get("gateway") or {}).get("ingressFrom"):
        out["ingressFrom"] = {"namespaces": list(src.get("namespaces") or []),
                              "podLabels": dict(src.get("podLabels") or {}), "cidrs": list(src.get("cidrs") or [])}
    egress = {k: {"cidrs": list(d.get("cidrs") or []), "ports": list(d["ports"])}
              for k, d in (spec.get("egress") or {}).items() if d and d.get("ports")}
    if egress:
        out["egress"] = egress
    return out


def chart_values(
    name: str, spec: dict[str, Any], secrets: dict[str, str], defaults: Defaults | None = None,
    service_keys: dict[str, dict[str, Any]] | None = None, trusted_keys: dict[str, list[str]] | None = None,
) -> Values:
    """Values for `helm template <name> charts/gameplane` that realise `spec`.

    `secrets` carries the platform's generated keys (read back from the cluster, or new), and
    `service_keys` each service's identity (identities.py), so that rendering is deterministic and
    a re-render never rotates a key. `defaults` fills in what the spec leaves to the operator (the
    development backends' images).
    """
    defaults = defaults or Defaults()
    overrides = {s["name"]: s for s in spec.get("services") or []}
    enabled = set(enabled_services(spec))
    values: Values = {
        svc: _service_values(svc, overrides.get(svc, {}), svc in enabled, spec) for svc in ALL_SERVICES
    }
    image = spec.get("image") or {}
    # A platform that names its image keeps it whole: the operator's default repository and tag
    # apply only together, to platforms that chose neither. The API server stores the CRD's default
    # repository in every platform, so that one does not count as a choice.
    chosen = bool(image.get("tag")) or image.get("repository", DEFAULT_REPOSITORY) not in ("", DEFAULT_REPOSITORY)
    repository = image.get("repository") if chosen else defaults.image_repository
    tag = image.get("tag", "") if chosen else defaults.image_tag
    db = spec.get("database") or {}
    msg = spec.get("messaging") or {}
    mon = spec.get("monitoring") or {}
    external_db = db.get("mode") == "external"
    external_nats = msg.get("mode") == "external"
    g: Values = {
        "version": spec["version"],
        "image": {
            "repository": repository or DEFAULT_REPOSITORY,
            "tag": tag or "",
            "pullPolicy": image.get("pullPolicy", "IfNotPresent"),
            "pullSecrets": list(image.get("pullSecrets", [])),
        },
        "size": spec.get("size", "small"),
        "managedBy": MANAGED_BY,
        "jurisdiction": spec.get("jurisdiction", "none"),
        "faults": [
            {"scenario": f["scenario"], "service": f.get("service", ""), "ratio": f.get("ratio", "1"),
             **({"latencyMs": int(f["latencyMs"])} if f.get("latencyMs") else {})}
            for f in spec.get("faults") or []
            if f.get("enabled", True)
        ],
        "monitoring": {
            "serviceMonitor": mon.get("serviceMonitor", True),
            "prometheusRule": mon.get("prometheusRules", True),
            "labels": dict(mon.get("labels") or {}),
        },
        "tracing": _tracing(mon.get("tracing") or {}),
    }
    if external_db:
        ref = db["external"]["secretRef"]
        g["database"] = {"secretName": ref["name"], "secretKey": ref.get("key", "url")}
        if tls := db["external"].get("tls"):
            ca = tls.get("caSecretRef") or {}
            g["database"]["tls"] = {"mode": tls.get("mode", "verify-full"), "caSecretName": ca.get("name", ""),
                                    "caKey": ca.get("key", "ca.crt")}
    if scrape := mon.get("scrapeFrom"):
        g["monitoring"]["scrapeFrom"] = {"namespaces": list(scrape.get("namespaces") or []),
                                         "podLabels": dict(scrape.get("podLabels") or {})}
    g["networkPolicy"] = network_policy_values(spec)
    if external_nats:
        g["natsUrl"] = msg["url"]
    scheduling = _scheduling(spec.get("scheduling"))
    if scheduling:
        g["scheduling"] = scheduling
    if defaults.dev_reload:
        g["dev"] = {"reload": True}
    values["global"] = g
    values["secrets"] = {
        "create": True,
        "postgresPassword": "" if external_db else secrets["postgres-password"],
        "serviceKeys": dict(service_keys or {}),
        "trustedKeys": dict(trusted_keys or {}),
    }
    embedded_db, embedded_nats = db.get("embedded") or {}, msg.get("embedded") or {}
    values["postgres"] = {"enabled": not external_db}
    if not external_db:
        if embedded_db.get("storageSize"):
            values["postgres"]["storageSize"] = embedded_db["storageSize"]
        if image := embedded_db.get("image") or defaults.postgres_image:
            values["postgres"]["image"] = image
    values["nats"] = {"enabled": not external_nats}
    if not external_nats:
        # Like the development PostgreSQL: a volume only when the spec sizes one (the chart's own
        # default is a 1Gi volume, which needs a StorageClass the cluster may not have).
        values["nats"]["storageSize"] = embedded_nats.get("storageSize", "")
    if not external_nats and (image := embedded_nats.get("image") or defaults.nats_image):
        values["nats"]["image"] = image
    values["dashboards"] = {"enabled": bool(mon.get("dashboards", True))}
    return values
