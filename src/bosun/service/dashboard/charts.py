"""Line charts as server-rendered SVG: coordinates computed here, markup in the
``chart.html`` macro, no chart library and no script. Every chart comes with its numbers as a
table, which is what a screen reader reads."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Chart", "Line", "line_chart", "percentile"]

WIDTH = 640
HEIGHT = 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 28, 12, 28


@dataclass(frozen=True, slots=True)
class Line:
    """One series: its polylines (a gap in the data splits the line) and its points."""

    name: str
    """Legend text."""
    style: int
    """Which of the stylesheet's series styles (0, 1, ...)."""
    segments: tuple[str, ...]
    """SVG ``points`` attributes, one per unbroken stretch."""
    dots: tuple[tuple[float, float], ...]
    """Each point, for markers."""


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart ready for the template."""

    id: str
    """Its element id (and its title's: ``<id>-title``)."""
    title: str
    """What it shows."""
    lines: tuple[Line, ...]
    """Its series."""
    y_ticks: tuple[tuple[float, str], ...]
    """(y, label) of the value axis."""
    x_ticks: tuple[tuple[float, str], ...]
    """(x, label) of the time axis."""
    rows: tuple[tuple[str, tuple[str, ...]], ...]
    """The data table: (time label, one formatted value per series)."""
    width: int = WIDTH
    height: int = HEIGHT


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q` quantile (0..1) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _nice(top: float) -> float:
    """A round axis maximum at or above `top`."""
    if top <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= top:
            return step * magnitude
    return 10 * magnitude


def line_chart(
    id: str,
    title: str,
    hours: Sequence[float],
    series: Sequence[tuple[str, Sequence[float | None]]],
    fmt: Callable[[float], str],
) -> Chart:
    """A chart of `series` (name, one value or None per hour) over `hours` (unix seconds)."""
    known = [v for _, values in series for v in values if v is not None]
    top = _nice(max(known, default=0.0))
    span_x = WIDTH - _LEFT - _RIGHT
    span_y = HEIGHT - _TOP - _BOTTOM
    count = max(len(hours) - 1, 1)

    def x_of(i: int) -> float:
        return round(_LEFT + span_x * i / count, 1)

    def y_of(v: float) -> float:
        return round(_TOP + span_y * (1 - v / top), 1)

    lines = []
    for style, (name, values) in enumerate(series):
        segments: list[str] = []
        current: list[str] = []
        dots = []
        for i, value in enumerate(values):
            if value is None:
                if current:
                    segments.append(" ".join(current))
                current = []
                continue
            point = (x_of(i), y_of(value))
            dots.append(point)
            current.append(f"{point[0]},{point[1]}")
        if current:
            segments.append(" ".join(current))
        lines.append(Line(name=name, style=style % 4, segments=tuple(segments), dots=tuple(dots)))
    y_ticks = tuple((y_of(top * f), fmt(top * f)) for f in (0, 0.5, 1))
    every = max(1, len(hours) // 6)
    x_ticks = tuple((x_of(i), _hour(h, len(hours))) for i, h in enumerate(hours) if i % every == 0)
    rows = tuple(
        (_hour(h, 0), tuple("-" if values[i] is None else fmt(values[i]) for _, values in series))  # type: ignore[arg-type]
        for i, h in enumerate(hours)
    )
    return Chart(
        id=id, title=title, lines=tuple(lines), y_ticks=y_ticks, x_ticks=x_ticks, rows=rows
    )


def _hour(at: float, points: int) -> str:
    moment = dt.datetime.fromtimestamp(at, dt.UTC)
    return moment.strftime("%H:%M" if 0 < points <= 48 else "%m-%d %H:%M")
