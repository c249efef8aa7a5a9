"""The chart panel: every chart on one x-axis of steps, aligned, with the same marks in the same columns.

Each chart is a label column (its name, then its current values), the plot
(`plot.draw`) and a tick column (the y-axis labels); the label and tick columns
have one width for all charts, so the plots line up, and a last row labels the
shared x-axis. The panel's height is shared among the charts (one to `MAX_ROWS`
rows each; past what fits, the last row says how many more there are and how to
see them). Options, changed by the app's keys: `focus` (one chart in the whole
panel), `window` (the last N steps, or None: the whole run), `mode` (auto:
braille line charts from 3 rows a chart, block bars below; or either always),
`log` (log-scale y), `smoothing` (the training loss' debiased EMA weight; the raw
loss is drawn faint behind; knob charts are never smoothed).

A chart whose data, axis and options did not change since the last frame is not
drawn again. Textual and rich only; never imports torch.
"""

from __future__ import annotations

import os

from rich.text import Span, Text

from schedtui.ui.lines import LineWidget
from schedtui.ui.plot import Axis, Canvas, Trace, axis, mark_columns, nice_end, smooth
from schedtui.ui.text import fmt

MAX_ROWS = 6
WINDOWS = (None, 200, 2_000, 20_000, 200_000)  # None: the whole run
SMOOTHING = (0.0, 0.6, 0.9, 0.99)
MODES = ("auto", "braille", "blocks")
FAINT = "grey42"


def default_mode() -> str:
    """braille unless told otherwise (SCHEDTUI_CHARTS=blocks) or on a console without braille glyphs."""
    want = os.environ.get("SCHEDTUI_CHARTS", "").strip().lower()
    if want in MODES:
        return want
    return "blocks" if os.environ.get("TERM") == "linux" else "auto"


class Charts(LineWidget):
    DEFAULT_CSS = "Charts { height: 1fr; }"

    def __init__(self, view, **kw):
        super().__init__(**kw)
        self.view = view
        self.zoomed: str | None = None  # a chart's key: shown alone
        self.window: int | None = None
        self.mode = default_mode()
        self.log_scale = False
        self.smoothing = 0.6
        self._drawn: dict = {}  # chart key -> (what it was drawn from, its lines)
        self._tick_w, self._label_w = 8, 11
        self._axes: dict = {}  # chart key -> the y-axis it was drawn on (held still while it fits)
        self._canvases: dict = {}  # chart key -> its cells, drawn again from where they changed

    # ---- options --------------------------------------------------------------------------------
    def windows(self) -> list:
        """The window choices that make sense now: the whole run and each last-N shorter than it."""
        return [w for w in WINDOWS if w is None or w < max(self.view.x_end, 1)]

    def x_range(self) -> tuple[int, int]:
        """The steps the charts span: to a round number past the last step while the run grows (the axis
        then holds still for a while: `plot.nice_end`), to the cursor in replay; the window's last N of it."""
        end = max(self.view.x_end, 1)
        x1 = nice_end(end) if getattr(self.view, "grows", False) else end
        return (0 if self.window is None else max(0, x1 - self.window)), x1

    def chart_keys(self) -> list[str]:
        return [c.key for c in self.view.charts()]

    # ---- drawing --------------------------------------------------------------------------------
    def render(self) -> Text:
        return Text("\n").join(self.text_lines())

    def refresh(self, *regions, **kw):
        if not regions:  # a whole redraw (resize, options): the label and tick columns may narrow again, the axes move
            self._tick_w, self._label_w, self._axes = 8, 11, {}
        return super().refresh(*regions, **kw)

    def text_lines(self) -> list[Text]:
        width, height = self.size.width, self.size.height
        if width <= 0 or height <= 0:
            return []
        charts = self.view.charts()
        if self.zoomed is not None:
            charts = [c for c in charts if c.key == self.zoomed] or charts[:1]
        n = len(charts)
        avail = max(1, height - 1)  # the last row: the x-axis
        rows = avail if self.zoomed is not None else max(1, min(MAX_ROWS, avail // n))
        shown = charts if n * rows <= avail else charts[:max(0, avail // rows - 1)]
        extra = max(0, avail - rows * len(shown)) if rows < MAX_ROWS and len(shown) == n else 0
        heights = [rows + (1 if i < extra else 0) for i in range(len(shown))]  # the rows left over: to the first charts
        x0, x1 = self.x_range()
        mode = self.mode if self.mode != "auto" else ("braille" if rows >= 3 else "blocks")
        # the label column fits the names and values; it only grows (a value's length changes every frame)
        label_w = self._label_w = max(self._label_w, min(22, max(10, *(len(c.title) for c in charts),
                                                              *(len(v) for c in shown for v in self._values(c)))) + 1)
        for attempt in range(3):  # the tick column's width comes from the labels, which come from what fits
            plot_w = max(4, width - label_w - self._tick_w)
            ncols = plot_w * 2 if mode == "braille" else plot_w
            built = [(chart, h, *self._traces(chart, x0, x1, ncols, mode == "braille")) for chart, h in zip(shown, heights)]
            need = 2 + max([6] + [len(t) for c, h, _, ax in built for t in ax.ticks(h, c.percent).values()]
                           + ([len(self._values(c)[0]) for c in shown] if rows == 1 else []))
            if need == self._tick_w or (attempt == 2 and need < self._tick_w):  # exactly what the y labels need
                break
            self._tick_w = need if attempt == 0 else max(need, self._tick_w)
        marked = mark_columns(self.view.marks, x0, x1, plot_w)
        lines: list[Text] = []
        drawn = {}
        for chart, h, traces, ax in built:
            key = (tuple(tuple(t.cols) for t in traces), tuple(t.style for t in traces), ax, chart.title, plot_w, h,
                   label_w, self._tick_w, mode, tuple(self._values(chart)), tuple(marked.items()))
            old = self._drawn.get(chart.key)
            if old is not None and old[0] == key:
                got = old[1]
            else:
                canvas = self._canvases.setdefault(chart.key, Canvas())
                plot = canvas.draw(traces, ax, plot_w, h, marked, mode, chart.percent)
                got = self._chart_lines(chart, plot, label_w, plot_w, h)
            drawn[chart.key] = (key, got)
            lines.extend(got)
        self._drawn = drawn
        self._canvases = {k: v for k, v in self._canvases.items() if k in drawn}
        if len(shown) < n:
            lines.append(Text(f"{n - len(shown)} more chart{'s' if n - len(shown) > 1 else ''} below: "
                              f"z shows one at a time, in the whole panel", style="grey62"))
        lines.append(self._x_axis(x0, x1, label_w, plot_w))
        return lines

    def _traces(self, chart, x0: int, x1: int, ncols: int, faint: bool) -> tuple[list[Trace], object]:
        """What to draw (each series' columns; the loss smoothed, over its raw values drawn faint: `faint`,
        as bars cannot show one behind the other) and the y-axis for it."""
        out = []
        for _, style, series in chart.series:
            cols = series.columns(x0, x1, ncols)
            if chart.kind == "loss" and self.smoothing > 0:
                if faint:
                    out.append(Trace(cols, FAINT))
                out.append(Trace(smooth(cols, self.smoothing), style))
            else:
                out.append(Trace(cols, style))
        return out, self._steady(chart.key, axis(out, self.log_scale))

    def _steady(self, key: str, ax: Axis) -> Axis:
        """The chart's y-axis held still while what it draws stays inside it and fills at least half of it
        (a chart whose axis moves is drawn again whole, every row, every frame); when it must move, it gets
        10% of room on either side. A flat or log axis is taken as it comes."""
        old = self._axes.get(key)
        if ax.empty or ax.flat or ax.log:
            self._axes.pop(key, None)
            return ax
        if old is not None and old.lo <= ax.lo and ax.hi <= old.hi and (ax.hi - ax.lo) >= 0.5 * (old.hi - old.lo):
            return old
        pad = 0.1 * (ax.hi - ax.lo)
        new = self._axes[key] = Axis(ax.lo - pad, ax.hi + pad, False, False, False)
        return new

    def _values(self, chart) -> list[str]:
        """The label column's value lines: each series' latest value (with its model when overlaid)."""
        spec = ".2%" if chart.percent else ".4g"
        if not chart.series:
            return ["-"]
        if len(chart.series) == 1:
            return [fmt(chart.series[0][2].last, spec)]
        return [f"{label} {fmt(s.last, spec)}" for label, _, s in chart.series]

    def _left(self, chart, rows: int, width: int, log: bool) -> list[tuple[str, list]]:
        """The label column, a (text, spans) per row: the title, then the latest values: one a row (with its
        model when overlaid), or, when they do not fit so, side by side in the series' colours."""
        values = self._values(chart)
        out = [(chart.title, [Span(0, len(chart.title), "bold")])] + [("", [])] * (rows - 1)
        if rows == 1:
            return out
        if len(values) <= rows - 1:
            styles = [st for _, st, _ in chart.series] if len(chart.series) > 1 else [""]
            for i, v in enumerate(values):
                out[1 + i] = (v, [Span(0, len(v), styles[i])] if styles[i] else [])
        else:  # side by side, fewer digits, in rows of what fits
            spec = ".1%" if chart.percent else ".3g"
            parts = [(fmt(s.last, spec), st) for _, st, s in chart.series]
            row, text, spans = 1, "", []
            for part, st in parts:
                if text and len(text) + 1 + len(part) > width - 1 and row < rows - 1:
                    out[row], row, text, spans = (text, spans), row + 1, "", []
                start = len(text) + (1 if text else 0)
                text = (text + " " if text else "") + part
                spans = spans + [Span(start, len(text), st)]
            out[row] = (text, spans)
        if log and not out[rows - 1][0]:
            out[rows - 1] = ("log scale", [Span(0, 9, "italic grey62")])
        return out

    def _chart_lines(self, chart, plot, label_w: int, plot_w: int, rows: int) -> list[Text]:
        left = self._left(chart, rows, label_w, plot.log)
        first = self._values(chart)[0]
        out = []
        for r in range(rows):
            words, spans = left[r]
            words = words[:label_w - 1].ljust(label_w)
            tick = first if rows == 1 else plot.ticks.get(r, "")
            text = words + plot.rows[r] + " " + tick
            spans = [sp for sp in spans if sp.start < label_w - 1]
            spans += [Span(label_w + a, label_w + b, st) for a, b, st in plot.spans[r]]
            if tick:
                spans.append(Span(label_w + plot_w + 1, len(text), "grey62"))
            out.append(Text(text, spans=spans, no_wrap=True))
        return out

    def _x_axis(self, x0: int, x1: int, label_w: int, plot_w: int) -> Text:
        left = ("steps" if self.window is None else f"last {self.window:,}")[:label_w - 1].ljust(label_w)
        a, b = f"{x0:,}", f"{x1:,}"
        mid = f"{(x0 + x1) // 2:,}"
        line = [" "] * plot_w
        for pos, s in ((0, a), (max(0, plot_w - len(b)), b), (max(0, plot_w // 2 - len(mid) // 2), mid)):
            if plot_w >= len(a) + len(b) + len(mid) + 4 or s is not mid:
                line[pos:pos + len(s)] = s
        return Text(left + "".join(line)[:plot_w], style="grey62", no_wrap=True)
