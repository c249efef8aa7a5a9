"""One chart's plot area as rows of characters and style runs: braille lines or block bars, y ticks.

Every chart of the screen is drawn against the same x-axis (steps x0..x1 over
`width` cells), so a step lands in the same column in every chart and the marks
(edits, pauses, SWA) line up. Input is plain data: `Trace`s (a series' steps and
values, a style; drawn in order, the later on top) and marks (step, style).

- `braille`: a line chart at 2x4 dots a cell; consecutive points are joined.
- `blocks`: bars of eighth blocks (for terminals without braille glyphs, and for
  charts one or two rows tall, where bars read better); traces after the first
  are drawn as a line at their level.
- The y-axis spans what is drawn. A span smaller than 1% of the values' magnitude
  is widened to that (a 0.4% wiggle is not drawn as a cliff), and the tick labels
  carry as many digits as it takes to tell them apart. `log=True` draws log10 of
  the values when they are all positive (`Plot.log` says whether it did).
- `smooth(values, weight)`: TensorBoard's debiased exponential moving average.

Pure: no textual, rich or torch (styles are strings the caller hands to rich).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BLOCKS = "▁▂▃▄▅▆▇█"
_LEFT = (0x01, 0x02, 0x04, 0x40)  # braille dots of the left column, top to bottom
_RIGHT = (0x08, 0x10, 0x20, 0x80)
MARK_GLYPH = "┊"
MIN_REL_SPAN = 0.01


@dataclass
class Trace:
    steps: list
    values: list
    style: str


@dataclass
class Plot:
    rows: list[str]  # one string of `width` characters per row, top first
    spans: list[list[tuple[int, int, str]]]  # per row: (start, end, style) runs
    ticks: dict[int, str] = field(default_factory=dict)  # row -> y label
    log: bool = False  # drawn on a log10 scale
    empty: bool = True  # nothing to draw yet


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first values are not pulled
    towards zero. weight 0: the values themselves."""
    if weight <= 0 or not values:
        return list(values)
    out, last, n = [], 0.0, 0
    for v in values:
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** n))
    return out


def columns(steps: list, values: list, x0: float, x1: float, n: int) -> list:
    """The mean of the values whose step falls in each of `n` columns spanning x0..x1 (None: no value)."""
    sums, counts = [0.0] * n, [0] * n
    span = max(x1 - x0, 1e-9)
    scale, last = n / span, n - 1
    for s, v in zip(steps, values):
        if s < x0 or s > x1:
            continue
        c = int((s - x0) * scale)
        if c > last:
            c = last
        sums[c] += v
        counts[c] += 1
    return [s / k if k else None for s, k in zip(sums, counts)]


def fill(cols: list) -> list:
    """Columns without a value between two that have one get the straight line between them."""
    known = [i for i, v in enumerate(cols) if v is not None]
    out = list(cols)
    for a, b in zip(known, known[1:]):
        if b - a > 1:
            va, vb = cols[a], cols[b]
            for i in range(a + 1, b):
                out[i] = va + (vb - va) * (i - a) / (b - a)
    return out


def y_axis(lo: float, hi: float) -> tuple[float, float]:
    """The axis for values lo..hi: widened to MIN_REL_SPAN of their magnitude when the span is smaller."""
    mag = max(abs(lo), abs(hi))
    if hi - lo >= MIN_REL_SPAN * mag and hi > lo:
        return lo, hi
    mid = (lo + hi) / 2
    half = max(MIN_REL_SPAN * mag / 2, (hi - lo) / 2, 1e-12)
    return mid - half, mid + half


def label(v: float, digits: int) -> str:
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e5:
        return format(v, f".{digits}g")
    mantissa, exp = format(v, f".{max(digits - 1, 1)}e").split("e")
    return (mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa) + "e" + exp


def tick_labels(values: list[float], span: float = 0.0) -> list[str]:
    """The values as short labels, with the fewest significant digits (from 3) that tell them apart and
    put each within 5% of `span` of its value."""
    for digits in range(3, 10):
        labels = [label(v, digits) for v in values]
        if len(set(labels)) == len(set(values)) and all(abs(float(t) - v) <= 0.05 * span for t, v in zip(labels, values)):
            return labels
    return [label(v, 10) for v in values]


@dataclass
class Axis:
    lo: float  # the axis' bottom and top, in drawn units (log10 of the values on a log scale)
    hi: float
    flat: bool = False  # every value the same: one line across the middle
    log: bool = False
    empty: bool = True  # nothing to draw

    def ticks(self, rows: int, percent: bool = False) -> dict[int, str]:
        """Row -> label: the top and bottom of the axis (and its middle from 5 rows), or the one value of a
        flat line (`percent`: values as percentages)."""
        if self.empty:
            return {}
        if percent:
            return {r: t + "%" for r, t in Axis(self.lo * 100, self.hi * 100, self.flat, False, False).ticks(rows).items()}
        unlog = (lambda v: 10 ** v) if self.log else (lambda v: v)
        lo, hi = self.lo, self.hi
        if self.flat:
            return {rows // 2 if rows > 1 else 0: tick_labels([unlog((lo + hi) / 2)])[0]}
        where = {0: hi, rows - 1: lo} if rows > 1 else {0: hi}
        if rows >= 5:
            where[rows // 2] = hi - (hi - lo) * (rows // 2) / (rows - 1)
        values = [unlog(v) for v in where.values()]
        return dict(zip(where, tick_labels(values, max(values) - min(values))))


def axis(traces: list[Trace], log: bool = False) -> Axis:
    """The y-axis for what `traces` hold (their values between the window's steps)."""
    vals = [v for t in traces if t.values for v in (min(t.values), max(t.values))]
    if not vals:
        return Axis(0.0, 1.0)
    lo, hi = min(vals), max(vals)
    if log and lo > 0:
        lo, hi = math.log10(lo), math.log10(hi)
        return Axis(lo - 0.5, hi + 0.5, True, True, False) if lo == hi else Axis(lo, hi, False, True, False)
    flat = lo == hi
    lo, hi = y_axis(lo, hi)
    return Axis(lo, hi, flat, False, False)


def draw(traces: list[Trace], ax: Axis, x0: float, x1: float, width: int, rows: int, marks=(),
         mode: str = "braille", percent: bool = False) -> Plot:
    """The plot area of one chart: `width` cells by `rows` rows, on axis `ax` (see `axis`)."""
    width, rows = max(width, 1), max(rows, 1)
    dots = width * 2 if mode == "braille" else width
    if ax.empty:
        chars, owner = [" "] * (width * rows), [-1] * (width * rows)
    else:
        cols = [columns(t.steps, t.values, x0, x1, dots) for t in traces]
        if ax.log:
            cols = [[math.log10(v) if v is not None and v > 0 else None for v in c] for c in cols]
        cols = [fill(c) for c in cols]
        draw_cells = _braille if mode == "braille" else _blocks
        chars, owner = draw_cells(cols, ax.lo, ax.hi, width, rows)
    styles = [t.style for t in traces]
    out_rows, out_spans = [], []
    marked = _mark_columns(marks, x0, x1, width)
    for r in range(rows):
        row_chars = chars[r * width:(r + 1) * width]
        row_styles = [styles[o] if o >= 0 else None for o in owner[r * width:(r + 1) * width]]
        for c, st in marked.items():
            if row_chars[c] == " ":
                row_chars[c] = MARK_GLYPH
            row_styles[c] = st
        out_rows.append("".join(row_chars))
        out_spans.append(_runs(row_styles))
    return Plot(out_rows, out_spans, ax.ticks(rows, percent and not ax.log), ax.log, ax.empty)


def _level(v: float, lo: float, hi: float, levels: int) -> int:
    return min(levels - 1, max(0, int((v - lo) / (hi - lo) * (levels - 1) + 0.5)))


def _braille(cols: list[list], lo: float, hi: float, width: int, rows: int) -> tuple[list[str], list[int]]:
    levels = rows * 4
    bits = [0] * (width * rows)
    owner = [-1] * (width * rows)
    place = []  # level -> (row, left bit, right bit)
    for lv in range(levels):
        g = levels - 1 - lv
        place.append((g >> 2, _LEFT[g & 3], _RIGHT[g & 3]))
    for ti, col in enumerate(cols):
        prev = None
        for x, v in enumerate(col):
            if v is None:
                prev = None
                continue
            y = _level(v, lo, hi, levels)
            a, b = (y, y) if prev is None else ((prev, y) if prev < y else (y, prev))
            c, right = x >> 1, x & 1
            for lv in range(a, b + 1):
                r, lb, rb = place[lv]
                i = r * width + c
                bits[i] |= rb if right else lb
                owner[i] = ti
            prev = y
    return [chr(0x2800 + b) if b else " " for b in bits], owner


def _blocks(cols: list[list], lo: float, hi: float, width: int, rows: int) -> tuple[list[str], list[int]]:
    levels = rows * 8
    chars = [" "] * (width * rows)
    owner = [-1] * (width * rows)
    for ti, col in enumerate(cols):
        for c, v in enumerate(col):
            if v is None:
                continue
            h = _level(v, lo, hi, levels) + 1  # 1..levels eighths
            top = rows - 1 - (h - 1) // 8
            if ti == 0:
                for r in range(top, rows):
                    i = r * width + c
                    chars[i] = BLOCKS[min(h - (rows - 1 - r) * 8, 8) - 1]
                    owner[i] = 0
            else:
                i = top * width + c
                chars[i] = "━"
                owner[i] = ti
    return chars, owner


def _mark_columns(marks, x0: float, x1: float, width: int) -> dict[int, str]:
    """Cell column -> the style of the first mark in it, for marks between x0 and x1."""
    out: dict[int, str] = {}
    span = max(x1 - x0, 1e-9)
    for step, style in marks:
        if x0 <= step <= x1:
            out.setdefault(min(width - 1, int((step - x0) / span * width)), style)
    return out


def _runs(styles: list) -> list[tuple[int, int, str]]:
    out, start = [], 0
    for i in range(1, len(styles) + 1):
        if i == len(styles) or styles[i] != styles[start]:
            if styles[start] is not None:
                out.append((start, i, styles[start]))
            start = i
    return out
