"""Small charts drawn on the server as inline SVG (no chart library, nothing from a CDN).

The SVG carries classes, not inline styles (the pages' Content-Security-Policy forbids inline
style), so ``static/css/app.css`` colours it. Texts come in already translated; the numbers
and dates are language-neutral.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from cityloop.web.dashboard_data import DayCount

WIDTH, HEIGHT = 720, 250
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 30


def nice_max(value: int) -> int:
    """A round top for an axis at or above ``value``: 5, 10, 20, 25, 50, 100, 200, 250, ..."""
    if value <= 5:
        return 5
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return value  # pragma: no cover - the loop always returns


def trend_svg(days: Sequence[DayCount], *, label: str, tip: Callable[[DayCount], str]) -> Markup:
    """Daily intake as bars and daily closed cases as a line, with a y axis and day ticks.

    ``label`` is the chart's accessible name; ``tip(day)`` the tooltip of one day.
    """
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    top = nice_max(max((max(d.intake, d.closed) for d in days), default=0))
    n = max(len(days), 1)
    step = plot_w / n

    def y(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    out = [
        f'<svg class="chart trend-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet">'
    ]
    for tick in range(5):
        value = top * tick / 4
        ty = y(value)
        out.append(
            f'<line class="chart-grid" x1="{LEFT}" y1="{ty:.1f}" x2="{LEFT + plot_w}" '
            f'y2="{ty:.1f}"/>'
        )
        out.append(
            f'<text class="chart-tick" x="{LEFT - 6}" y="{ty + 4:.1f}" '
            f'text-anchor="end">{value:g}</text>'
        )
    points = []
    for i, day in enumerate(days):
        x = LEFT + i * step
        bar_w = step * 0.64
        bar_x = x + (step - bar_w) / 2
        out.append(f"<g><title>{escape(tip(day))}</title>")
        out.append(
            f'<rect class="chart-hit" x="{x:.1f}" y="{TOP}" width="{step:.1f}" height="{plot_h}"/>'
        )
        if day.intake:
            out.append(
                f'<rect class="chart-intake" x="{bar_x:.1f}" y="{y(day.intake):.1f}" '
                f'width="{bar_w:.1f}" height="{plot_h - (y(day.intake) - TOP):.1f}"/>'
            )
        out.append("</g>")
        points.append((x + step / 2, y(day.closed)))
        last = i == len(days) - 1
        if i % 5 == (len(days) - 1) % 5 or last:
            out.append(
                f'<text class="chart-tick" x="{x + step / 2:.1f}" y="{TOP + plot_h + 18}" '
                f'text-anchor="middle">{day.day.month:02d}-{day.day.day:02d}</text>'
            )
    if points:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        out.append(f'<polyline class="chart-closed" points="{path}"/>')
        out.extend(
            f'<circle class="chart-closed-dot" cx="{px:.1f}" cy="{py:.1f}" r="2.6"/>'
            for px, py in points
        )
    out.append(
        f'<line class="chart-axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" '
        f'y2="{TOP + plot_h}"/>'
    )
    out.append("</svg>")
    return Markup("".join(out))  # every text above is escaped or a number
