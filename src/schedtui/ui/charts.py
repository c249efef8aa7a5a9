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
from schedtui.ui.plot import Trace, axis, draw, smooth
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

    # ---- options --------------------------------------------------------------------------------
    def windows(self) -> list:
        """The window choices that make sense now: the whole run and each last-N shorter than it."""
        return [w for w in WINDOWS if w is None or w < max(self.view.x_end, 1)]

    def x_range(self) -> tuple[int, int]:
        x1 = max(self.view.x_end, 1)
        return (0 if self.window is None else max(0, x1 - self.window)), x1

    def chart_keys(self) -> list[str]:
        return [c.key for c in self.view.charts()]

    # ---- drawing --------------------------------------------------------------------------------
    def render(self) -> Text:
        return Text("\n").join(self.text_lines())

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
        marks = self.view.marks
        mark_key = (len(marks), marks[-1] if marks else None)
        label_w = min(22, max(10, *(len(c.title) for c in charts), *(len(v) for c in shown for v in self._values(c)))) + 1
        mode = self.mode if self.mode != "auto" else ("braille" if rows >= 3 else "blocks")
        built = []
        for chart, h in zip(shown, heights):
            traces = self._traces(chart, x0, x1, faint=mode == "braille")
            built.append((chart, h, traces, axis(traces, self.log_scale)))
        tick_w = 2 + max([6] + [len(t) for c, h, _, ax in built for t in ax.ticks(h, c.percent).values()]
                         + ([len(v) for c in shown for v in self._values(c)[:1]] if rows == 1 else []))
        plot_w = max(4, width - label_w - tick_w)
        lines: list[Text] = []
        drawn = {}
        for chart, h, traces, ax in built:
            key = (tuple(s.version for _, _, s in chart.series), chart.title, x0, x1, plot_w, h, label_w, tick_w,
                   mode, self.log_scale, self.smoothing, mark_key, tuple(t.style for t in traces))
            old = self._drawn.get(chart.key)
            if old is not None and old[0] == key:
                got = old[1]
            else:
                plot = draw(traces, ax, x0, x1, plot_w, h, marks, mode, chart.percent)
                got = self._chart_lines(chart, plot, label_w, plot_w, h)
            drawn[chart.key] = (key, got)
            lines.extend(got)
        self._drawn = drawn
        if len(shown) < n:
            lines.append(Text(f"{n - len(shown)} more chart{'s' if n - len(shown) > 1 else ''} below: "
                              f"z shows one at a time, in the whole panel", style="grey62"))
        lines.append(self._x_axis(x0, x1, label_w, plot_w))
        return lines

    def _traces(self, chart, x0: int, x1: int, faint: bool) -> list[Trace]:
        """What to draw: each series between x0 and x1; the loss smoothed, over its raw values drawn faint
        (`faint`: bars cannot show one behind the other)."""
        out = []
        for label, style, series in chart.series:
            steps, values = series.curve(x0, x1)
            if chart.kind == "loss" and self.smoothing > 0 and values:
                if faint:
                    out.append(Trace(steps, values, FAINT))
                out.append(Trace(steps, smooth(values, self.smoothing), style))
            else:
                out.append(Trace(steps, values, style))
        return out

    def _values(self, chart) -> list[str]:
        """The label column's value lines: each series' latest value (with its model when overlaid)."""
        spec = ".2%" if chart.percent else ".4g"
        if len(chart.series) == 1:
            return [fmt(chart.series[0][2].last, spec)]
        return [f"{label} {fmt(s.last, spec)}" for label, _, s in chart.series]

    def _chart_lines(self, chart, plot, label_w: int, plot_w: int, rows: int) -> list[Text]:
        values = self._values(chart)
        styles = [st for _, st, _ in chart.series] if len(chart.series) > 1 else [""]
        left = [(chart.title, "bold")] + [("", "")] * (rows - 1)
        if rows > 1:
            per_row = [[v] for v in values[:rows - 2]] + [values[rows - 2:]] if len(values) > rows - 1 else [[v] for v in values]
            for i, vs in enumerate(per_row):
                left[1 + i] = (" ".join(vs), styles[i % len(styles)] if len(vs) == 1 else "")
            if plot.log and len(per_row) < rows - 1:
                left[rows - 1] = ("log scale", "italic grey62")
        out = []
        for r in range(rows):
            words, style = left[r]
            words = words[:label_w - 1].ljust(label_w)
            tick = values[0] if rows == 1 else plot.ticks.get(r, "")
            text = words + plot.rows[r] + " " + tick
            spans = [Span(0, len(words.rstrip()), style)] if style and words.strip() else []
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
