"""KPI charts as server-rendered SVG: the geometry is computed here (pure, tested in tests/unit)
and the template draws it, so the page needs no JavaScript and no chart library. Every chart is
also given as a table on the page (the accessible reading of the same figures)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 240, 70, 40, 16


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    series: int  # index of its series (its colour class)
    text: str  # what it says in words: "05-01 GGR: EUR 12.00"


@dataclass(frozen=True)
class Tick:
    y: float
    value: int
    text: str


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    ticks: list[Tick]
    zero_y: float
    labels: list[tuple[float, str]]  # x of each group's centre and its label
    series: tuple[str, ...]
    width: int = WIDTH
    height: int = HEIGHT


def _nice_step(span: int, ticks: int = 4) -> int:
    raw = max(1, -(-span // ticks))
    magnitude = 10 ** (len(str(raw)) - 1)
    for m in (1, 2, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def grouped_bars(groups: list[tuple[str, list[int]]], series: tuple[str, ...],
                 fmt: Callable[[int], str] = str) -> BarChart:
    """One group per label (a day, a game) of one bar per series (named by `series`); negative
    values hang below zero. `fmt` writes a value in words (money, a percentage)."""
    values = [v for _, vs in groups for v in vs]
    high, low = max([0, *values]), min([0, *values])
    step = _nice_step(max(high - low, 1))
    top = -(-high // step) * step if high > 0 else 0
    bottom = (low // step) * step if low < 0 else 0
    if top == bottom:
        top = step
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    plot_w = WIDTH - PAD_LEFT - 10

    def y_of(v: int) -> float:
        return PAD_TOP + (top - v) * plot_h / (top - bottom)

    zero = y_of(0)
    per_group = plot_w / max(len(groups), 1)
    bar_w = per_group * 0.8 / max(len(series), 1)
    bars, labels = [], []
    for i, (label, vs) in enumerate(groups):
        x0 = PAD_LEFT + i * per_group + per_group * 0.1
        labels.append((round(x0 + per_group * 0.4, 1), label))
        for j, v in enumerate(vs):
            y = y_of(max(v, 0))
            bars.append(Bar(round(x0 + j * bar_w, 1), round(y, 1), round(bar_w, 1),
                            round(abs(y_of(v) - zero), 1), label, v, j, f"{label} {series[j]}: {fmt(v)}"))
    ticks = [Tick(round(y_of(v), 1), v, fmt(v)) for v in range(bottom, top + 1, step)]
    return BarChart(bars, ticks, round(zero, 1), labels, series)
