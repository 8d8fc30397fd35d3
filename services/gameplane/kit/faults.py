"""Fault drills: what `spec.faults` of a GamingPlatform asks of this service, applied for real.

Scenarios (the CRD's enum, `gameplane.kit.faults.SCENARIOS`):

- `latency`: a `ratio` of HTTP requests waits `latencyMs` before it is served;
- `errors`: a `ratio` of HTTP requests is answered 500 `fault-injected` (problem+json) unserved;
- `unavailable`: /readyz fails, so Kubernetes takes the Pods out of their Service;
- `drop-events`: consumers fetch a `ratio` of events and neither handle nor acknowledge them, so
  JetStream redelivers them after its ack wait (nothing is lost: they run once the fault ends).

The health routes (/livez, /readyz, /metrics) are never delayed or failed by `latency`/`errors`.
A request is judged inside the service's RED metrics (FastAPI routes and kit.fastroutes alike),
so dashboards and alerts see a drill; the gateway's proxy front is judged before its own metrics
(clients see the drill there, `gameplane_fault_injected_total` counts it).
"Every `ratio`-th" is counted, not drawn at random: a ratio of 0.5 hits exactly every second
request, so a drill's effect is what was asked for, not what luck gives.

Settings come from `GP_<SERVICE>_FAULTS` (a JSON list, read at start: `gameplane up`, tests) and
from `GP_<SERVICE>_FAULTS_FILE`, re-read every few seconds (in Kubernetes a ConfigMap mounted
as a file: a drill turns on and off without restarting a Pod, which would itself be a fault).
What is applied is reported on /readyz (`faults`) and as `gameplane_fault_active`; the operator
sets the platform's FaultsActive condition from the former.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from gameplane.kit import metrics
from gameplane.kit.problems import PROBLEM_JSON, Problem

log = logging.getLogger("gameplane.faults")

Scenario = Literal["latency", "errors", "unavailable", "drop-events"]
SCENARIOS: tuple[str, ...] = ("latency", "errors", "unavailable", "drop-events")
DEFAULT_LATENCY_MS = 250
HEALTH_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
_CHECKED = "gameplane.faults_checked"  # scope key: a request is judged once (front and inner app)


class FaultSetting(BaseModel):
    """One scenario as the chart writes it (`{"scenario": "latency", "ratio": "0.5"}`)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    scenario: Scenario
    ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=DEFAULT_LATENCY_MS, ge=1, le=60_000, alias="latencyMs")


def parse(raw: Iterable[Any] | str | None) -> list[FaultSetting]:
    """The settings in `raw` (a JSON text or a list of dicts/settings). An entry that is not a
    known scenario is logged and skipped: a drill must never stop a service from starting."""
    if raw is None or raw == "":
        return []
    items = json.loads(raw) if isinstance(raw, str) else list(raw)
    if not isinstance(items, list):
        raise ValueError("faults must be a JSON list")
    out: dict[str, FaultSetting] = {}
    for item in items:
        try:
            setting = item if isinstance(item, FaultSetting) else FaultSetting.model_validate(item)
        except ValidationError as exc:
            log.warning("ignoring fault setting %r: %s", item, exc.errors()[0].get("msg"))
            continue
        out[setting.scenario] = setting  # one entry per scenario; the last one wins
    return list(out.values())


class _Every:
    """Deterministic selection of a ratio of occurrences: credit accumulates by `ratio` per call
    and an occurrence is hit whenever a whole unit is available."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self.credit = 0.0

    def hit(self) -> bool:
        self.credit += self.ratio
        if self.credit >= 1.0 - 1e-9:
            self.credit -= 1.0
            return True
        return False


class Faults:
    """The fault settings of one running service and the places that apply them."""

    def __init__(self, service: str, settings: Iterable[FaultSetting] = (), file: Path | None = None,
                 poll_seconds: float = 2.0) -> None:
        self.service = service
        self.file = file
        self.poll_seconds = poll_seconds
        self._base = list(settings)  # from the environment; the file, when it says anything, replaces it
        self.active: dict[str, FaultSetting] = {}
        self._every: dict[str, _Every] = {}
        self.injected: dict[str, int] = {s: 0 for s in SCENARIOS}
        self._task: asyncio.Task[None] | None = None
        self._file_text: str | None = None
        self.set(self._base)
        if file is not None:
            self.reload()

    # -- settings --------------------------------------------------------------------------------
    def set(self, settings: Iterable[FaultSetting]) -> None:
        new = {s.scenario: s for s in settings}
        if new == self.active:
            return
        for scenario in SCENARIOS:
            metrics.FAULT_ACTIVE.labels(self.service, scenario).set(1 if scenario in new else 0)
        for scenario, s in new.items():
            if scenario not in self.active or self.active[scenario] != s:
                self._every[scenario] = _Every(s.ratio)
        if new or self.active:
            log.warning("%s fault drill: %s", self.service,
                        ", ".join(f"{s.scenario} ratio={s.ratio:g}" for s in new.values()) or "off")
        self.active = new

    def reload(self) -> None:
        """Re-read the settings file (missing or empty: the environment's settings)."""
        assert self.file is not None
        try:
            text = self.file.read_text() if self.file.exists() else ""
        except OSError as exc:
            log.warning("cannot read %s: %s", self.file, exc)
            return
        if text == self._file_text:
            return
        self._file_text = text
        try:
            self.set(parse(text) if text.strip() else self._base)
        except ValueError as exc:
            log.warning("ignoring unreadable fault settings in %s: %s", self.file, exc)

    def start(self) -> None:
        if self.file is not None and self._task is None:
            self._task = asyncio.create_task(self._watch(), name=f"{self.service}-faults")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            self.reload()

    # -- application -----------------------------------------------------------------------------
    def hit(self, scenario: str, n: int = 1) -> int:
        """How many of `n` occurrences the active `scenario` affects now (and counts them)."""
        every = self._every.get(scenario)
        if scenario not in self.active or every is None:
            return 0
        hits = sum(1 for _ in range(n) if every.hit())
        if hits:
            self.injected[scenario] += hits
            metrics.FAULT_INJECTED.labels(self.service, scenario).inc(hits)
        return hits

    @property
    def unavailable(self) -> bool:
        return "unavailable" in self.active

    def report(self) -> list[dict[str, Any]]:
        """What /readyz shows and the operator reads: the scenarios applied, with their settings."""
        out = []
        for s in self.active.values():
            row: dict[str, Any] = {"scenario": s.scenario, "ratio": s.ratio, "injected": self.injected[s.scenario]}
            if s.scenario == "latency":
                row["latencyMs"] = s.latency_ms
            out.append(row)
        return out

    async def before(self, scope: Scope) -> Problem | None:
        """Judge one HTTP request (once): wait if `latency` hits it, and return the problem to
        answer instead of serving it if `errors` does. None: serve it."""
        if scope["type"] != "http" or scope.get(_CHECKED) or scope["path"] in HEALTH_PATHS or not self.active:
            return None
        scope[_CHECKED] = True
        if self.hit("latency"):
            await asyncio.sleep(self.active["latency"].latency_ms / 1000)
        if self.hit("errors"):
            return Problem(500, "fault-injected", "Injected fault",
                           f"an `errors` fault drill is active on {self.service}", service=self.service)
        return None

    async def gate(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Run `app` for one ASGI request, delayed or refused as the active faults say."""
        problem = await self.before(scope)
        if problem is not None:
            body = json.dumps(problem.body(scope["path"])).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", PROBLEM_JSON.encode()),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)


class FaultMiddleware:
    """`Faults.gate` as Starlette middleware (outermost, so measured latency includes the fault)."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.faults.gate(self.app, scope, receive, send)
