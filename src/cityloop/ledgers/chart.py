"""The progress chart (挂图作战): signed-off items and done problems over time, as SVG.

Generated on the server as a self-contained SVG string (no scripts, no external fonts or
images), so the web UI can inline it and a bulletin office can paste it into a report. Pure
and deterministic: the same points give the same bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from xml.sax.saxutils import escape

from cityloop.ledgers.domain import TimelinePoint

WIDTH, HEIGHT = 760, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 48, 48
FONT = "Noto Sans CJK SC, Source Han Sans SC, Microsoft YaHei, PingFang SC, sans-serif"
ITEM_COLOUR = "#1f6fb2"
GROUP_COLOUR = "#d9822b"


def _nice_max(value: int) -> int:
    """A round top for the y axis at or above ``value`` (10, 20, 25, 50, 100, …)."""
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return value


def progress_svg(
    points: Sequence[TimelinePoint],
    *,
    title: str,
    total_items: int,
    total_groups: int,
    item_label: str = "已销号措施",
    group_label: str = "已完成问题",
) -> str:
    """A step chart of two cumulative counts, with the totals as dashed target lines."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    y_max = _nice_max(max(total_items, total_groups, 1))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}" font-size="12" role="img" '
        f'aria-label="{escape(title, {chr(34): "&quot;"})}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{WIDTH / 2:.0f}" y="26" text-anchor="middle" font-size="16" '
        f'font-weight="bold">{escape(title)}</text>',
    ]

    def y_of(value: float) -> float:
        return TOP + plot_h - value / y_max * plot_h

    for tick in range(0, 6):
        value = y_max * tick / 5
        y = y_of(value)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#e3e3e3"/>'
        )
        label = f"{value:g}"
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{label}</text>'
        )
    out.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        f'stroke="#333"/>'
    )
    if not points:
        out.append(
            f'<text x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h / 2:.0f}" '
            f'text-anchor="middle" fill="#888">尚无销号记录</text>'
        )
    else:
        first, last = points[0].day, points[-1].day
        span = max((last - first).days, 1)

        def x_of(day: dt.date) -> float:
            return LEFT + (day - first).days / span * plot_w

        for total, colour in ((total_items, ITEM_COLOUR), (total_groups, GROUP_COLOUR)):
            y = y_of(total)
            out.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                f'stroke="{colour}" stroke-dasharray="4 4" stroke-opacity="0.6"/>'
            )
        for attr, colour in (("signed_off", ITEM_COLOUR), ("groups_done", GROUP_COLOUR)):
            path = []
            previous: float | None = None
            for point in points:
                x, y = x_of(point.day), y_of(getattr(point, attr))
                if previous is None:
                    path.append(f"M{x:.1f},{y:.1f}")
                else:
                    path.append(f"H{x:.1f}V{y:.1f}")
                previous = y
            out.append(
                f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
            )
            end = points[-1]
            out.append(
                f'<circle cx="{x_of(end.day):.1f}" cy="{y_of(getattr(end, attr)):.1f}" r="3.5" '
                f'fill="{colour}"/>'
            )
        ticks = _date_ticks(first, last)
        shown_year: int | None = None
        for day in ticks:
            x = x_of(day)
            out.append(
                f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 5}" '
                f'stroke="#333"/>'
            )
            out.append(
                f'<text x="{x:.1f}" y="{TOP + plot_h + 20}" text-anchor="middle" '
                f'fill="#555">{day.month}月{day.day}日</text>'
            )
            if day.year != shown_year:
                # The year under the first tick and wherever it changes.
                out.append(
                    f'<text x="{x:.1f}" y="{TOP + plot_h + 36}" text-anchor="middle" '
                    f'fill="#888" font-size="11">{day.year}年</text>'
                )
                shown_year = day.year
    legend_x = LEFT + plot_w + 18
    last_point = points[-1] if points else TimelinePoint(dt.date(2000, 1, 1), 0, 0)
    rows = (
        (ITEM_COLOUR, item_label, last_point.signed_off, total_items),
        (GROUP_COLOUR, group_label, last_point.groups_done, total_groups),
    )
    for index, (colour, label, value, total) in enumerate(rows):
        y = TOP + 12 + index * 44
        out.append(f'<rect x="{legend_x}" y="{y - 9}" width="14" height="4" fill="{colour}"/>')
        out.append(f'<text x="{legend_x + 20}" y="{y - 3}">{escape(label)}</text>')
        out.append(
            f'<text x="{legend_x + 20}" y="{y + 15}" font-weight="bold" fill="{colour}">'
            f"{value} / {total}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _date_ticks(first: dt.date, last: dt.date, most: int = 6) -> list[dt.date]:
    span = (last - first).days
    if span <= 0:
        return [first]
    step = max(1, -(-span // (most - 1)))
    ticks = [first + dt.timedelta(days=d) for d in range(0, span + 1, step)]
    if ticks[-1] != last and (last - ticks[-1]).days * 2 >= step:
        ticks.append(last)
    return ticks
