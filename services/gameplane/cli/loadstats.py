"""The pure parts of `gameplane load`: the action mix, its schedule, and the run's summary.

No I/O here, so the arithmetic the summary reports (counts, percentiles, rates) is tested on its own.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# What a player does once registered and logged in, in the order the mix names them.
ACTIONS = ("deposit", "play", "withdraw")
DEFAULT_MIX = "deposit=1,play=4,withdraw=1"


class MixError(ValueError):
    pass


def parse_mix(text: str) -> dict[str, int]:
    """`deposit=1,play=4,withdraw=1` → {action: weight}. Unnamed actions weigh 0; at least one
    weight must be positive. Integer weights keep the schedule exact (no float drift)."""
    weights = dict.fromkeys(ACTIONS, 0)
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in weights:
            raise MixError(f"{part!r}: expected <action>=<weight> with action one of {', '.join(ACTIONS)}")
        try:
            weight = int(value)
        except ValueError:
            raise MixError(f"{part!r}: the weight must be a whole number") from None
        if weight < 0:
            raise MixError(f"{part!r}: the weight must not be negative")
        weights[name] = weight
    if not any(weights.values()):
        raise MixError(f"{text!r}: at least one action needs a positive weight")
    return weights


def schedule(weights: dict[str, int]) -> Iterator[str]:
    """An endless sequence of actions in the mix's proportions, spread evenly (smooth weighted
    round-robin, as nginx balances upstreams): every window of sum(weights) actions holds each
    action exactly its weight times, and no action runs in a long burst. Deterministic, so a
    short run still does what the mix says."""
    active = {a: w for a, w in weights.items() if w > 0}
    total = sum(active.values())
    current = dict.fromkeys(active, 0)
    while True:
        for a, w in active.items():
            current[a] += w
        chosen = max(current, key=lambda a: current[a])  # ties: the first in ACTIONS order
        current[chosen] -= total
        yield chosen


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (q in 0..100) of already sorted values; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class ActionStats:
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, successful and failed alike

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def ms(q: float) -> float | None:
            v = percentile(ordered, q)
            return None if v is None else round(v * 1000, 1)

        return {"count": self.ok + self.failed, "ok": self.ok, "errors": self.failed,
                "p50_ms": ms(50), "p95_ms": ms(95)}


@dataclass
class Stats:
    """What a run did: per action its successes, failures and latencies; failures by kind
    ("<action> <status> <problem type>", or "<action> <exception>" when no answer came)."""

    actions: dict[str, ActionStats] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # e.g. "withdraw review": not errors
    examples: dict[str, str] = field(default_factory=dict)  # the first detail of each error kind

    def record(self, action: str, seconds: float, error: str | None = None, outcome: str | None = None,
               detail: str = "") -> None:
        s = self.actions.setdefault(action, ActionStats())
        s.latencies.append(seconds)
        if error is None:
            s.ok += 1
        else:
            s.failed += 1
            self.errors[f"{action} {error}"] += 1
            self.examples.setdefault(f"{action} {error}", detail)
        if outcome is not None:
            self.outcomes[f"{action} {outcome}"] += 1

    @property
    def done(self) -> int:
        return sum(s.ok + s.failed for s in self.actions.values())

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.actions.values())

    def mixed(self) -> int:
        return sum(s.ok + s.failed for a, s in self.actions.items() if a in ACTIONS)

    def server_errors(self) -> int:
        """Failures the platform answered with a 5xx (the kind the platform must never give)."""
        return sum(n for kind, n in self.errors.items() if kind.split(" ")[1][:1] == "5")

    def summary(self, elapsed: float) -> dict[str, Any]:
        return {
            "elapsed_s": round(elapsed, 2),
            "actions_done": self.done,
            "errors": self.failed,
            "server_errors": self.server_errors(),
            # The mix's actions only: sign-ups happen before the timed phase `elapsed` measures.
            "rate_per_s": round(self.mixed() / elapsed, 2) if elapsed > 0 else 0.0,
            "actions": {a: s.summary() for a, s in sorted(self.actions.items())},
            "errors_by_kind": dict(self.errors.most_common()),
            "error_examples": {k: self.examples[k] for k in self.errors},
            "outcomes": dict(sorted(self.outcomes.items())),
        }
