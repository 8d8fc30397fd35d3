"""One OpenAPI document for the whole platform, merged from each service's own.

`merge` is pure: it keeps only the operations the gateway actually routes to the service that
published them, renames every component to `<service>.<Name>` (two services may both define a
`Problem` or a `Limit` that differ) and rewrites the `$ref`s to match, and states the security of
each operation as the gateway enforces it. `OpenApiCache` fetches and caches the result.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gameplane.gateway import problems as gateway_problems
from gameplane.gateway.routes import Access, BadPath, Blocked, NotRunning, RouteTable
from gameplane.kit import apidoc

log = logging.getLogger("gameplane.gateway.openapi")

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SECURITY_SCHEME = "playerToken"
# Headers the gateway sets itself; a client cannot supply them, so they are not documented.
GATEWAY_HEADERS = frozenset({"authorization", "x-player-id"})

Doc = dict[str, Any]


def _rewrite_refs(node: Any, service: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/components/"):
                _, _, kind, name = v.split("/", 3)
                out[k] = f"#/components/{kind}/{service}.{name}"
            else:
                out[k] = _rewrite_refs(v, service)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, service) for v in node]
    return node


def merge(docs: Mapping[str, Doc], table: RouteTable, *, unavailable: list[str] | None = None,
          title: str = "gameplane API", version: str = "0.1.0") -> Doc:
    merged: Doc = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Every player-facing route of the platform, as served by the gateway."},
        "paths": {},
        "components": {"securitySchemes": {SECURITY_SCHEME: {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "Player access token from POST /v1/players/login"}}},
        "tags": [],
        "x-gameplane-unavailable": sorted(unavailable or []),
    }
    for service in sorted(docs):
        doc = _rewrite_refs(copy.deepcopy(docs[service]), service)
        kept = False
        for path, item in (doc.get("paths") or {}).items():
            new_item = _exposed_operations(service, path, item, table)
            if new_item:
                merged["paths"].setdefault(path, {}).update(new_item)
                kept = True
        if not kept:
            continue
        merged["tags"].append({"name": service})
        for kind, entries in (doc.get("components") or {}).items():
            if kind == "securitySchemes":
                continue  # services declare their service-token scheme; clients never see it
            target = merged["components"].setdefault(kind, {})
            for name, value in entries.items():
                target[f"{service}.{name}"] = value
    return merged


def _exposed_operations(service: str, path: str, item: Doc, table: RouteTable) -> Doc:
    out: Doc = {}
    shared = {k: v for k, v in item.items() if k not in HTTP_METHODS}
    for method in HTTP_METHODS:
        op = item.get(method)
        if op is None:
            continue
        try:
            route = table.resolve(method.upper(), path)
        except (Blocked, BadPath, NotRunning):
            continue
        if route is None or route.target != service:
            continue
        op = dict(op)
        if "operationId" in op:
            op["operationId"] = f"{service}.{op['operationId']}"
        op["tags"] = op.get("tags") or [service]
        params = [p for p in op.get("parameters", [])
                  if not (p.get("in") == "header" and p.get("name", "").lower() in GATEWAY_HEADERS)]
        if params:
            op["parameters"] = params
        else:
            op.pop("parameters", None)
        op["security"] = [] if route.access is Access.PUBLIC else [{SECURITY_SCHEME: []}]
        # The gateway's own answers, merged with the service's (one 401 may carry either's types).
        ours = [*gateway_problems.EVERY_ROUTE,
                *(gateway_problems.PLAYER_ROUTE if route.access is Access.PLAYER else ()),
                *(gateway_problems.PLAY_ROUTE if route.play else ())]
        op["responses"] = copy.deepcopy(op.get("responses", {}))
        apidoc.problem_answers(op, ours, schema_ref=f"#/components/schemas/{service}.Problem")
        op["x-gameplane-service"] = service
        out[method] = op
    if out:
        out.update(shared)
    return out


Fetch = Callable[[str], Awaitable[Doc | None]]


class OpenApiCache:
    """The merged document, rebuilt at most once per TTL (once per few seconds while a service
    is missing, so it reappears soon after it comes back). Concurrent readers share one rebuild."""

    def __init__(self, table: RouteTable, fetch: Fetch, ttl: float, *, version: str = "0.1.0",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self.fetch = fetch
        self.ttl = ttl
        self.version = version
        self._now = clock
        self._doc: Doc | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Doc:
        if self._doc is not None and self._now() < self._expires:
            return self._doc
        async with self._lock:
            if self._doc is not None and self._now() < self._expires:
                return self._doc
            services = sorted(self.table.services)
            results = await asyncio.gather(*(self.fetch(s) for s in services))
            docs = {s: d for s, d in zip(services, results, strict=True) if d is not None}
            missing = [s for s in services if s not in docs]
            self._doc = merge(docs, self.table, unavailable=missing, version=self.version)
            self._expires = self._now() + (min(self.ttl, 5.0) if missing else self.ttl)
            return self._doc
