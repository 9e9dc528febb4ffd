"""A datapoint's recent values as an inline SVG line chart, drawn on the server.

No JavaScript library and no CDN: the admin UI must work on a building's offline network.
"""

from __future__ import annotations

import math
from html import escape

from readapi.admin.formatting import when

WIDTH = 900
HEIGHT = 260
LEFT = 70  # room for the value labels
RIGHT = 20
TOP = 15
BOTTOM = 40  # room for the time labels


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round axis values (steps of 1, 2, 2.5 or 5 times a power of ten) covering low..high."""
    raw_step = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    first = math.floor(low / step) * step
    ticks = [round(first, 12)]
    while ticks[-1] < high:  # a step is at least a quarter of the range: a few rounds
        ticks.append(round(first + len(ticks) * step, 12))
    return ticks


def _label(value: float, step: float) -> str:
    # As many decimals as the step needs, so the labels read 21.6, 21.8 or 0.25, 0.50.
    decimals = len(f"{step:.10f}".rstrip("0").split(".")[1])
    return f"{value:.{decimals}f}"


def line_chart(points: list[tuple[int, float]], unit: str = "") -> str:
    """SVG markup of the points (time ms, value), oldest first; "" for fewer than two."""
    if len(points) < 2:
        return ""
    times = [p[0] for p in points]
    values = [p[1] for p in points]
    t0, t1 = min(times), max(times)
    v0, v1 = min(values), max(values)
    if v0 == v1:  # a flat line: give it a band to sit in
        v0, v1 = v0 - 1, v1 + 1
    ticks = nice_ticks(v0, v1)
    v0, v1 = ticks[0], ticks[-1]
    step = ticks[1] - ticks[0]
    if t0 == t1:
        t1 = t0 + 1
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def x(ms: int) -> float:
        return LEFT + (ms - t0) / (t1 - t0) * plot_w

    def y(value: float) -> float:
        return TOP + (v1 - value) / (v1 - v0) * plot_h

    path = " ".join(f"{x(ms):.1f},{y(v):.1f}" for ms, v in points)
    suffix = f" {escape(unit)}" if unit else ""
    grid = []
    for value in ticks:
        gy = y(value)
        grid.append(
            f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{WIDTH - RIGHT}" y2="{gy:.1f}" '
            f'stroke="#e6e7e9" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#667382">{escape(_label(value, step))}{suffix}</text>'
        )
    return (
        f'<svg class="bemcom-plot" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-label="Recent values" xmlns="http://www.w3.org/2000/svg">'
        + "".join(grid)
        + f'<polyline fill="none" stroke="#206bc4" stroke-width="2" points="{path}"/>'
        f'<text x="{LEFT}" y="{HEIGHT - 12}" font-size="11" fill="#667382">'
        f"{escape(when(t0))}</text>"
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" font-size="11" fill="#667382" '
        f'text-anchor="end">{escape(when(t1))}</text>'
        "</svg>"
    )
