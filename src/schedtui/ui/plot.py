"""One chart's plot area as rows of characters and style runs: braille lines or block bars, y ticks.

Every chart of the screen is drawn against the same x-axis (steps x0..x1 over the
plot's columns), so a step lands in the same column in every chart and the marks
(edits, pauses, SWA) line up. Input is plain data: `Trace`s (a value, or None, per
column: a series' mean in each column's steps, see `columns`; drawn in order, the
later on top) and the marked columns (`mark_columns`).

- `braille`: a line chart at 2x4 dots a cell (two columns of values a cell);
  consecutive points are joined, gaps between known columns bridged.
- `blocks`: bars of eighth blocks (for terminals without braille glyphs, and for
  charts one or two rows tall, where bars read better); traces after the first
  are drawn as a line at their level.
- The y-axis (`axis`) spans what is drawn. A span smaller than 1% of the values'
  magnitude is widened to that (a 0.4% wiggle is not drawn as a cliff), and the
  tick labels carry as many digits as it takes to tell them apart. `log=True`
  draws log10 of the values when they are all positive (`Axis.log` says whether).
- `smooth(values, weight)`: TensorBoard's debiased exponential moving average.
- `nice_end(step)`: where a growing run's x-axis ends: a round number a little
  past the last step, so the axis (and what is drawn against it) holds still for
  a while instead of moving every frame.

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
_NICE = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


@dataclass
class Trace:
    cols: list  # per column: a value, or None
    style: str


@dataclass
class Plot:
    rows: list[str]  # one string of `width` characters per row, top first
    spans: list[list[tuple[int, int, str]]]  # per row: (start, end, style) runs
    ticks: dict[int, str] = field(default_factory=dict)  # row -> y label
    log: bool = False  # drawn on a log10 scale
    empty: bool = True  # nothing to draw yet


def nice_end(step: float, headroom: float = 1.08) -> int:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at or past
    `step * headroom`: the x-axis moves about every 20% of growth, not every step."""
    want = max(step * headroom, 1.0)
    p = 10 ** math.floor(math.log10(want))
    return int(next(m * p for m in _NICE if m * p >= want - 1e-9))


def smooth(values: list, weight: float) -> list:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first values are not pulled
    towards zero. weight 0: the values themselves. None stays None (and is skipped)."""
    if weight <= 0 or not values:
        return list(values)
    out, last, n = [], 0.0, 0
    for v in values:
        if v is None:
            out.append(None)
            continue
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** n))
    return out


def columns(steps: list, values: list, x0: float, x1: float, n: int) -> list:
    """The mean of the values whose step falls in each of `n` columns spanning x0..x1 (None: no value)."""
    sums, counts = [0.0] * n, [0] * n
    scale, last = n / max(x1 - x0, 1e-9), n - 1
    for s, v in zip(steps, values):
        if s < x0 or s > x1:
            continue
        c = int((s - x0) * scale)
        if c > last:
            c = last
        sums[c] += v
        counts[c] += 1
    return [s / k if k else None for s, k in zip(sums, counts)]


def column_of(step: float, x0: float, x1: float, n: int) -> int:
    return min(n - 1, int((step - x0) * n / max(x1 - x0, 1e-9)))


def mark_columns(marks, x0: float, x1: float, width: int) -> dict[int, str]:
    """Cell column -> the style of the first mark in it, for marks between x0 and x1."""
    out: dict[int, str] = {}
    for step, style in marks:
        if x0 <= step <= x1:
            out.setdefault(column_of(step, x0, x1, width), style)
    return out


def fill(cols: list) -> list:
    """Columns without a value between two that have one get the straight line between them."""
    out, prev = list(cols), None
    for i, v in enumerate(cols):
        if v is None:
            continue
        if prev is not None and i - prev > 1:
            a = cols[prev]
            step = (v - a) / (i - prev)
            for k in range(prev + 1, i):
                out[k] = a + step * (k - prev)
        prev = i
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
    _ticks: dict = field(default_factory=dict, compare=False, repr=False)

    def ticks(self, rows: int, percent: bool = False) -> dict[int, str]:
        """Row -> label: the top and bottom of the axis (and its middle from 5 rows), or the one value of a
        flat line (`percent`: values as percentages)."""
        key = (rows, percent)
        if key not in self._ticks:
            self._ticks[key] = self._make_ticks(rows, percent)
        return self._ticks[key]

    def _make_ticks(self, rows: int, percent: bool) -> dict[int, str]:
        if self.empty:
            return {}
        if percent and not self.log:
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
    """The y-axis for what `traces` hold."""
    vals = [v for t in traces for v in t.cols if v is not None]
    if not vals:
        return Axis(0.0, 1.0)
    lo, hi = min(vals), max(vals)
    if log and lo > 0:
        lo, hi = math.log10(lo), math.log10(hi)
        return Axis(lo - 0.5, hi + 0.5, True, True, False) if lo == hi else Axis(lo, hi, False, True, False)
    flat = hi - lo <= 1e-9 * max(abs(lo), abs(hi))  # one value (a mean of equal values may differ in its last bit)
    if flat:
        lo = hi = (lo + hi) / 2
    lo, hi = y_axis(lo, hi)
    return Axis(lo, hi, flat, False, False)


def draw(traces: list[Trace], ax: Axis, width: int, rows: int, marked: dict | None = None, mode: str = "braille",
         percent: bool = False) -> Plot:
    """The plot area of one chart: `width` cells by `rows` rows, on axis `ax` (see `axis`); the traces have
    2 columns a cell in braille, 1 in blocks; `marked`: cell column -> style (see `mark_columns`)."""
    return Canvas().draw(traces, ax, width, rows, marked, mode, percent)


class Canvas:
    """One chart's cells, kept from frame to frame: when the axis, size and mode are the same as last time
    (a live chart's usually are: the axes hold still), only the cells from the first column whose value
    changed onwards are drawn again (the newest points of a growing run), not the whole chart."""

    def __init__(self):
        self._key = None
        self._cols: list = []  # the traces' columns as last drawn (before filling)
        self._filled: list = []
        self._bits: list = []  # braille: dot bits per cell; blocks: the character
        self._owner: list = []  # the trace that drew each cell last (-1: none)

    def draw(self, traces: list[Trace], ax: Axis, width: int, rows: int, marked: dict | None = None,
             mode: str = "braille", percent: bool = False) -> Plot:
        width, rows = max(width, 1), max(rows, 1)
        key = (ax.lo, ax.hi, ax.log, ax.empty, width, rows, mode, len(traces))
        cols = [t.cols for t in traces]
        if key != self._key or any(len(c) != len(p) for c, p in zip(cols, self._cols)):
            start = 0
            self._bits = [0 if mode == "braille" else " "] * (width * rows)
            self._owner = [-1] * (width * rows)
        else:
            start = self._first_change(cols)
        self._key = key
        if start is not None and not ax.empty:
            drawn = [[math.log10(v) if v is not None and v > 0 else None for v in c] for c in cols] if ax.log else cols
            if ax.flat:  # one value, on the row its tick is on (means of equal values differ in their last bits)
                mid = (ax.lo + ax.hi) / 2
                if mode == "braille":
                    levels = rows * 4
                    mid = ax.lo + max(0, levels - 1 - ((rows // 2) * 4 + 2)) * (ax.hi - ax.lo) / (levels - 1)
                drawn = [[None if v is None else mid for v in c] for c in drawn]
            filled = [fill(c) for c in drawn]
            per_cell = 2 if mode == "braille" else 1
            c0 = start // per_cell
            blank = 0 if mode == "braille" else " "
            for r in range(rows):  # the cells from column c0 on are drawn again
                self._bits[r * width + c0:(r + 1) * width] = [blank] * (width - c0)
                self._owner[r * width + c0:(r + 1) * width] = [-1] * (width - c0)
            paint = _braille if mode == "braille" else _blocks
            paint(self._bits, self._owner, filled, ax.lo, ax.hi, width, rows, c0 * per_cell)
            self._filled = filled
        self._cols = [list(c) for c in cols]
        chars = [chr(0x2800 + b) if b else " " for b in self._bits] if mode == "braille" else list(self._bits)
        styles = [t.style for t in traces]
        owner = self._owner
        out_rows, out_spans = [], []
        for r in range(rows):
            row_chars = chars[r * width:(r + 1) * width]
            row_styles = [styles[o] if o >= 0 else None for o in owner[r * width:(r + 1) * width]]
            for c, st in (marked or {}).items():
                if c < width:
                    if row_chars[c] == " ":
                        row_chars[c] = MARK_GLYPH
                    row_styles[c] = st
            out_rows.append("".join(row_chars))
            out_spans.append(_runs(row_styles))
        return Plot(out_rows, out_spans, ax.ticks(rows, percent), ax.log, ax.empty)

    def _first_change(self, cols: list) -> int | None:
        """The first column to draw again (None: nothing changed): the one after the last column with a value
        before the first that differs (the gap filled up to it, and the line into it, change too)."""
        first = None
        for new, old in zip(cols, self._cols):
            if new == old:
                continue
            j = next(i for i, (a, b) in enumerate(zip(new, old)) if a != b) - 1
            while j >= 0 and new[j] is None:
                j -= 1
            first = j + 1 if first is None else min(first, j + 1)
        return first


def _braille(bits: list, owner: list, cols: list[list], lo: float, hi: float, width: int, rows: int, start: int) -> None:
    """Dots for the columns from `start` on (the cells there are blank), joined to the column before it."""
    levels = rows * 4
    left, right = [], []  # level -> (cell index offset of its row, bit) for a left / right dot column
    for lv in range(levels):
        g = levels - 1 - lv
        left.append(((g >> 2) * width, _LEFT[g & 3]))
        right.append(((g >> 2) * width, _RIGHT[g & 3]))
    scale, top = (levels - 1) / (hi - lo), levels - 1

    def level(v: float) -> int:
        y = int((v - lo) * scale + 0.5)
        return 0 if y < 0 else (top if y > top else y)

    for ti, col in enumerate(cols):
        prev = level(col[start - 1]) if start > 0 and col[start - 1] is not None else None
        for x in range(start, len(col)):
            v = col[x]
            if v is None:
                prev = None
                continue
            y = int((v - lo) * scale + 0.5)
            y = 0 if y < 0 else (top if y > top else y)
            if prev is None or prev == y:
                a = b = y
            elif prev < y:
                a, b = prev + 1, y
            else:
                a, b = y, prev - 1
            c = x >> 1
            place = right if x & 1 else left
            for lv in range(a, b + 1):
                off, bit = place[lv]
                bits[off + c] |= bit
                owner[off + c] = ti
            prev = y


def _blocks(chars: list, owner: list, cols: list[list], lo: float, hi: float, width: int, rows: int, start: int) -> None:
    """Bars (the first trace) and lines at their level (the others) for the columns from `start` on."""
    levels = rows * 8
    scale = (levels - 1) / (hi - lo)
    for ti, col in enumerate(cols):
        for c in range(start, len(col)):
            v = col[c]
            if v is None:
                continue
            h = min(levels, max(1, int((v - lo) * scale + 0.5) + 1))  # 1..levels eighths
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


def _runs(styles: list) -> list[tuple[int, int, str]]:
    """(start, end, style) for each run of one style (None: no span)."""
    out, start, cur = [], 0, styles[0] if styles else None
    for i, st in enumerate(styles):
        if st != cur:
            if cur is not None:
                out.append((start, i, cur))
            start, cur = i, st
    if cur is not None:
        out.append((start, len(styles), cur))
    return out
