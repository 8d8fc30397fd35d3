"""The OpenAPI document of a service, with every problem answer its routes really give.

FastAPI documents what a route declares and, for request validation, a 422 as `application/json`.
The kit answers every error as `application/problem+json` and adds answers of its own: 422
`validation-error` where a route reads parameters or a body (NUL characters and out-of-range
numbers included, gameplane.kit.problems.input_problem), 400 `bad-request` where it reads a body
that may not parse, and the answers of its authentication dependencies. This pass rewrites the
document so each answer's media type is problem+json and its schema names the `type`s it carries:
the route's own declarations (`responses=problems.responses(...)`) merged with the kit's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, routing

from gameplane.kit import problems
from gameplane.kit.problems import PROBLEM_JSON, ProblemType

# Dependencies that refuse requests themselves (a service token, a player context): each is
# registered with the problem types it raises (or carries them as `problem_types`), so every
# route that uses one documents them.
_DEPENDENCY_PROBLEMS: dict[Callable[..., Any], tuple[ProblemType, ...]] = {}


def declare_dependency(dependency: Callable[..., Any], *types: ProblemType) -> None:
    _DEPENDENCY_PROBLEMS[dependency] = types


def _register_kit_dependencies() -> None:
    from gameplane.kit.auth import player_context

    # `callers(...)` dependencies carry their own `problem_types`.
    declare_dependency(player_context, problems.UNAUTHENTICATED, problems.FORBIDDEN, problems.CALLER_NOT_ALLOWED)


def _routes(app: FastAPI) -> Iterable[Any]:
    """Every route with its effective path and dependencies (FastAPI >= 0.16x keeps included
    routers as such and exposes the effective view through iter_route_contexts)."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:
        yield from (r for r in app.routes if isinstance(r, routing.APIRoute))
        return
    for rc in contexts(app.routes):
        if isinstance(rc.original_route, routing.APIRoute):
            yield rc


def route_problems(route: Any) -> list[ProblemType]:
    """The problem types the kit itself may answer on this route."""
    dependants = [route.dependant, *_all_dependencies(route.dependant)]
    found: list[ProblemType] = []
    if any(d.path_params or d.query_params or d.header_params or d.cookie_params or d.body_params
           for d in dependants):
        found.append(problems.VALIDATION)
    if any(d.body_params for d in dependants):
        found.append(problems.BAD_REQUEST)
    for d in dependants:
        # registered, or carried by the dependency itself (what a factory such as a role check
        # returns: `dependency.problem_types = (UNAUTHENTICATED, FORBIDDEN)`)
        found.extend(_DEPENDENCY_PROBLEMS.get(d.call, ()) or getattr(d.call, "problem_types", ()))  # type: ignore[arg-type]
    return found


def _all_dependencies(dependant: Any) -> Iterable[Any]:
    for dep in dependant.dependencies:
        yield dep
        yield from _all_dependencies(dep)


def _declared_types(response: dict[str, Any]) -> tuple[set[str], set[int]]:
    schema = (response.get("content") or {}).get(PROBLEM_JSON, {}).get("schema") or {}
    props = schema.get("properties") or {}
    return set((props.get("type") or {}).get("enum", [])), set((props.get("status") or {}).get("enum", []))


def problem_answers(operation: dict[str, Any], types: Iterable[ProblemType], *,
                    schema_ref: str = problems.PROBLEM_SCHEMA_REF) -> None:
    """Add these problem types to an operation's answers (merging with what is declared), and
    make every error answer problem+json. `schema_ref`: where the document keeps the Problem schema."""
    responses = operation.setdefault("responses", {})
    for t in types:
        entry = responses.setdefault(str(t.status), {"description": t.title})
        uris, statuses = _declared_types(entry)
        if t.uri not in uris:
            uris.add(t.uri)
            statuses.add(t.status)
            if t.title not in entry.get("description", ""):
                entry["description"] = f"{entry.get('description', '')}; {t.title}".strip("; ")
        entry["content"] = {PROBLEM_JSON: {"schema": {
            "allOf": [{"$ref": schema_ref}],
            "properties": {"type": {"enum": sorted(uris)}, "status": {"enum": sorted(statuses)}}}}}
    for status, entry in responses.items():
        if status[:1] in "45" and PROBLEM_JSON not in (entry.get("content") or {}):
            entry["content"] = {PROBLEM_JSON: {"schema": {"$ref": schema_ref}}}


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with its problem answers (cached on the app, as FastAPI does)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = FastAPI.openapi(app)
    for route in _routes(app):
        if not route.include_in_schema:
            continue
        kit = route_problems(route)
        item = doc.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            op = item.get(method.lower())
            if op is not None:
                problem_answers(op, kit)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = problems.PROBLEM_COMPONENT
    # FastAPI's own 422 models, no longer referenced by any answer.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = doc
    return doc


def install(app: FastAPI) -> None:
    if not _DEPENDENCY_PROBLEMS:
        _register_kit_dependencies()
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
