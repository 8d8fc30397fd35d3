"""The kit's OpenAPI pass (gameplane.kit.apidoc): every error answer a route really gives is in its
document as application/problem+json with the problem types it may carry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel

from gameplane.kit import apidoc, problems
from gameplane.kit.auth import callers
from gameplane.kit.problems import PROBLEM_JSON, ProblemType

GONE = ProblemType(404, "thing-not-found", "No such thing")
TAKEN = ProblemType(409, "thing-taken", "Thing taken")
BASE = "https://gameplane.io/problems/"


class Body(BaseModel):
    name: str


def _app() -> FastAPI:
    app = FastAPI()
    router = APIRouter()

    @router.get("/open")
    async def open_() -> dict[str, str]:
        return {}

    @router.post("/things/{thing_id}", responses=problems.responses(GONE, TAKEN))
    async def put_thing(thing_id: int, body: Body, _caller: str = Depends(callers("games"))) -> dict[str, str]:
        return {}

    app.include_router(router)
    apidoc.install(app)
    return app


def _types(op: dict[str, Any], status: str) -> set[str]:
    content = op["responses"][status]["content"]
    assert list(content) == [PROBLEM_JSON]
    return set(content[PROBLEM_JSON]["schema"]["properties"]["type"]["enum"])


def test_declared_and_kit_answers_are_documented_as_problems() -> None:
    doc = _app().openapi()
    op = doc["paths"]["/things/{thing_id}"]["post"]
    assert set(op["responses"]) == {"200", "400", "401", "403", "404", "409", "422"}
    assert _types(op, "404") == {BASE + "thing-not-found"}
    assert _types(op, "409") == {BASE + "thing-taken"}
    assert _types(op, "422") == {BASE + "validation-error"}
    assert _types(op, "400") == {BASE + "bad-request"}
    assert _types(op, "401") == {BASE + "unauthenticated"}
    assert _types(op, "403") == {BASE + "forbidden", BASE + "caller-not-allowed"}
    assert doc["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_a_route_without_input_or_token_documents_no_problem() -> None:
    # negative control: the pass adds only what a route can really answer
    op = _app().openapi()["paths"]["/open"]["get"]
    assert set(op["responses"]) == {"200"}


def test_a_problem_type_raises_what_it_documents() -> None:
    problem = GONE("thing 7", thing_id=7)
    assert (problem.status, problem.slug, problem.title) == tuple(GONE)
    assert problem.body("/things/7") == {"type": BASE + "thing-not-found", "title": "No such thing", "status": 404,
                                         "detail": "thing 7", "instance": "/things/7", "thing_id": 7}


def test_database_refusals_of_the_input_are_422_and_others_are_not() -> None:
    import asyncpg

    nul = asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')
    assert problems.input_problem(nul) is not None and problems.input_problem(nul).status == 422  # type: ignore[union-attr]
    huge = asyncpg.exceptions.DataError("invalid input for query argument $1: 9223372036854775808 "
                                        "(value out of int64 range)")
    assert problems.input_problem(huge) is not None
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = nul
    assert problems.input_problem(wrapped) is not None
    assert problems.input_problem(asyncpg.exceptions.DeadlockDetectedError("deadlock detected")) is None
    assert problems.input_problem(ValueError("something else")) is None


def test_transient_database_failures_are_503_to_repeat_and_bugs_stay_500() -> None:
    import asyncpg
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    deadlock = asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
    wrapped = DBAPIError("INSERT ...", {}, deadlock)  # as SQLAlchemy raises it
    for exc in (deadlock, wrapped, asyncpg.exceptions.LockNotAvailableError("lock timeout"),
                asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
                asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
                ConnectionRefusedError(111, "refused"), PoolTimeout("QueuePool limit reached")):
        problem = problems.known_problem(exc)
        assert problem is not None, exc
        assert (problem.status, problem.slug) == (503, "dependency-unavailable"), exc
        assert problem.body("/x")["dependency"] == "postgres" and problem.headers == {"Retry-After": "1"}
    # a bug is not dressed up as an outage: no problem, so the handlers answer 500
    for bug in (ValueError("something else"), KeyError("k"), asyncpg.exceptions.UndefinedColumnError("no column"),
                asyncpg.exceptions.UniqueViolationError("duplicate key")):
        assert problems.known_problem(bug) is None, bug
    # the caller's input stays a 422
    nul = asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')
    assert problems.known_problem(nul).status == 422  # type: ignore[union-attr]


def test_a_dependency_can_carry_its_problem_types() -> None:
    role = ProblemType(403, "role-required", "Role required")

    def needs_role() -> None: ...

    needs_role.problem_types = (role,)  # type: ignore[attr-defined]
    app = FastAPI()

    @app.get("/guarded")
    async def guarded(_: None = Depends(needs_role)) -> dict[str, str]:
        return {}

    apidoc.install(app)
    assert _types(app.openapi()["paths"]["/guarded"]["get"], "403") == {BASE + "role-required"}
