"""Charts as inline SVG, rendered on the server: values in, escaped markup out (no I/O).

The site runs no JavaScript (CSP `script-src 'none'`) and allows no inline styles, so a chart
is plain SVG whose colours come from classes in style.css (CHART_CSS, light and dark). Each
chart names itself to assistive technology (`role="img"` with its `<title>` and `<desc>`),
each bar carries a `<title>` tooltip, and the same numbers follow as a table in a
`<details>`, for screen readers, text browsers and anyone who wants the exact figures.
Every text that reaches the markup is escaped here (design.md, invariant 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

CHART_CSS = """\
figure.chart { margin: .5rem 0 1.5rem; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
figure.chart text { fill: currentColor; font: 11px system-ui, sans-serif; }
figure.chart .axis { stroke: #999; stroke-width: 1; }
figure.chart .s0 { fill: #3b6ea8; }
figure.chart .s1 { fill: #b8612a; }
figure.chart table { border-collapse: collapse; margin: .4rem 0; }
figure.chart th, figure.chart td { text-align: left; padding: .1rem .8rem .1rem 0; }
figure.chart td.n { text-align: right; font-variant-numeric: tabular-nums; }
.legend .s0, .legend .s1 { display: inline-block; width: .8em; height: .8em; }
.legend .s0 { background: #3b6ea8; }
.legend .s1 { background: #b8612a; }
@media (prefers-color-scheme: dark) {
  figure.chart .s0 { fill: #7fb0e8; }
  figure.chart .s1 { fill: #f0a06a; }
  .legend .s0 { background: #7fb0e8; }
  .legend .s1 { background: #f0a06a; }
}
"""

# Geometry, in SVG user units (pixels at natural size; CSS shrinks a chart, never grows it).
# Charts stay under 500 wide, so that a phone shrinks their text by a quarter at most.
PLOT_HEIGHT = 140
TOP = 14
LEFT = 44
RIGHT = 10
LABEL_SPACE = 46
MAX_SLOT = 36
PLOT_WIDTH = 430
MIN_SLOT = 8
MAX_LABELS = 14
BAR_HEIGHT = 18
BAR_GAP = 4
NAME_SPACE = 160
BAR_SPACE = 240
VALUE_SPACE = 60
LONGEST_NAME = 26


@dataclass(frozen=True)
class Series:
    """One row of values along a chart's labels; `style` picks its colour (s0, s1)."""

    name: str
    values: tuple[int, ...]
    style: str = "s0"


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    # Where the label links in the table (e.g. a busiest day to its month page).
    href: str | None = None


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above value (1 for nothing)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    raise AssertionError("unreachable")


def _number(value: int) -> str:
    return f"{value:,}"


def _shorten(text: str) -> str:
    return text if len(text) <= LONGEST_NAME else text[: LONGEST_NAME - 1] + "…"


def _svg_open(chart_id: str, width: int, height: int, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}"'
        f' aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]


def _table(
    title: str, head: str, names: Sequence[str], rows: Sequence[tuple[Markup, Sequence[int]]]
) -> str:
    header = "".join(f'<th scope="col">{escape(n)}</th>' for n in (head, *names))
    body = "".join(
        f'<tr><th scope="row">{label}</th>'
        + "".join(f'<td class="n">{_number(v)}</td>' for v in values)
        + "</tr>"
        for label, values in rows
    )
    return (
        f'<details class="data"><summary>{escape(title)}: the numbers</summary>'
        f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></details>"
    )


def columns(
    chart_id: str,
    title: str,
    desc: str,
    head: str,
    labels: Sequence[str],
    series: Sequence[Series],
) -> Markup:
    """Vertical columns, one group per label (one column per series), with a y axis from
    0 to a round maximum; at most MAX_LABELS labels are written under the axis. `head`
    names the labels' column in the table."""
    count = max(len(labels), 1)
    groups = len(series)
    slot = max(MIN_SLOT, min(MAX_SLOT, PLOT_WIDTH // count))
    width = LEFT + slot * count + RIGHT
    height = TOP + PLOT_HEIGHT + LABEL_SPACE
    top = nice_ceiling(max((v for s in series for v in s.values), default=0))
    base = TOP + PLOT_HEIGHT
    out = _svg_open(chart_id, width, height, title, desc)
    out.append(f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{width - RIGHT}" y2="{base}"/>')
    out.append(f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{_number(top)}</text>')
    out.append(f'<text x="{LEFT - 6}" y="{base}" text-anchor="end">0</text>')
    column = max(1.0, (slot - 2) / groups)
    every = math.ceil(count / MAX_LABELS)
    for i, label in enumerate(labels):
        x0 = LEFT + i * slot + 1
        for g, s in enumerate(series):
            value = s.values[i]
            tall = round(PLOT_HEIGHT * value / top, 1)
            out.append(
                f'<rect class="{s.style}" x="{round(x0 + g * column, 1)}" y="{base - tall}"'
                f' width="{round(column, 1)}" height="{tall}">'
                f"<title>{escape(label)}: {_number(value)} {escape(s.name)}</title></rect>"
            )
        if i % every == 0:
            cx, cy = x0 + slot / 2, base + 12
            slant = f' transform="rotate(-35 {cx} {cy})"' if len(label) > 3 else ""
            out.append(
                f'<text x="{cx}" y="{cy}" text-anchor="{"end" if slant else "middle"}"{slant}>'
                f"{escape(label)}</text>"
            )
    out.append("</svg>")
    rows = [(escape(label), [s.values[i] for s in series]) for i, label in enumerate(labels)]
    table = _table(title, head, [s.name for s in series], rows)
    return Markup(f'<figure class="chart" id="{chart_id}">{"".join(out)}{table}</figure>')


def bars(
    chart_id: str,
    title: str,
    desc: str,
    head: str,
    unit: str,
    rows: Sequence[Bar],
    charted: int | None = None,
) -> Markup:
    """Horizontal bars, one per row in the order given; `head` names the rows' column in
    the table and `unit` what a value counts. With `charted`, only that many rows are drawn;
    the table has them all."""
    drawn = rows[:charted] if charted is not None else rows
    top = max((r.value for r in drawn), default=0) or 1
    width = NAME_SPACE + BAR_SPACE + VALUE_SPACE
    height = max(1, len(drawn)) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    out = _svg_open(chart_id, width, height, title, desc)
    for i, row in enumerate(drawn):
        y = BAR_GAP + i * (BAR_HEIGHT + BAR_GAP)
        long = round(BAR_SPACE * row.value / top, 1)
        middle = y + BAR_HEIGHT / 2 + 4
        out.append(
            f'<text x="{NAME_SPACE - 6}" y="{middle}" text-anchor="end">'
            f"{escape(_shorten(row.label))}</text>"
            f'<rect class="s0" x="{NAME_SPACE}" y="{y}" width="{long}" height="{BAR_HEIGHT}">'
            f"<title>{escape(row.label)}: {_number(row.value)} {escape(unit)}</title></rect>"
            f'<text x="{NAME_SPACE + long + 4}" y="{middle}">{_number(row.value)}</text>'
        )
    out.append("</svg>")
    table_rows = [
        (
            Markup(f'<a href="{escape(r.href)}"><bdi>{escape(r.label)}</bdi></a>')
            if r.href
            else Markup(f"<bdi>{escape(r.label)}</bdi>"),
            [r.value],
        )
        for r in rows
    ]
    table = _table(title, head, [unit], table_rows)
    return Markup(f'<figure class="chart" id="{chart_id}">{"".join(out)}{table}</figure>')
