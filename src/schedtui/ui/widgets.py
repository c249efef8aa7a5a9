"""The main screen's custom widgets: the status line and the chart panel.

All render from a `RunView` when the app redraws them (a few times a second), never per
event, as `LineWidget`s: a frame repaints only the lines whose text changed.
Textual and rich only; no torch.
"""

from __future__ import annotations

from collections import deque

from rich.text import Span, Text

from schedtui.ui.lines import LineWidget
from schedtui.ui.spark import runs, sparkcells, sparkline
from schedtui.ui.view import RunView, fmt

STATE_STYLE = {"RUNNING": "bold green", "PAUSED": "bold yellow", "SWA": "bold cyan", "DONE": "bold blue",
               "CRASHED": "bold red", "STOPPED": "bold magenta", "STARTING": "bold", "INTERRUPTED": "bold magenta"}


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def display_state(view: RunView) -> str:
    st = view.state
    if st is None:
        return "STARTING"
    if st.status == "running" and st.swa:
        return "SWA"
    return {"running": "RUNNING", "paused": "PAUSED", "completed": "DONE", "crashed": "CRASHED",
            "stopped": "STOPPED", "interrupted": "INTERRUPTED"}.get(st.status, st.status.upper())


class StatusBar(LineWidget):
    DEFAULT_CSS = "StatusBar { height: 1; }"

    def __init__(self, view: RunView, **kw):
        super().__init__(**kw)
        self.view = view
        self.note = "starting (loading torch and the data)..."

    def render(self) -> Text:
        v, st = self.view, self.view.state
        state = display_state(v)
        t = Text()
        if st is None:
            t.append(" STARTING ", style="reverse")
            t.append(f" {self.note}")
            return t
        t.append(f"{st.preset} ", style="bold")
        t.append(f"{st.device} ")
        t.append(f" {state} ", style=f"reverse {STATE_STYLE.get(state, '')}")
        total = st.total_steps or 0
        frac = min(st.step / total, 1.0) if total else 0.0
        bar_w = 10
        filled = int(frac * bar_w)
        t.append(f" ep {min(st.epoch + 1, st.epochs)}/{st.epochs} ")
        t.append("━" * filled, style="green")
        t.append("━" * (bar_w - filled), style="grey37")
        t.append(f" {st.step}/{total}")
        sps = st.samples_per_s
        t.append(f"  {fmt(sps, '.0f') if sps is not None else '-'}/s  {clock(st.elapsed_s)}")
        if st.status == "running":
            t.append(f"  ETA {clock(st.eta_s)}")
        source = (v.header or {}).get("source")
        if source:
            t.append(f"  rerun of {source.get('run_id')}", style="cyan")
        return t


def _short(v: float) -> str:
    """A range end in at most 7 characters: 0.0501, 6.4e-04, 1.2e+05."""
    return format(v, ".2g") if v == 0 or 1e-3 <= abs(v) < 1e4 else format(v, ".1e")


class Charts(LineWidget):
    """Each chart: name, current value, a sparkline, min..max of what is shown. One to four rows a
    chart, as the pane's height allows."""

    DEFAULT_CSS = "Charts { height: auto; }"
    MAX_ROWS = 4

    def __init__(self, view: RunView, **kw):
        super().__init__(**kw)
        self.view = view
        self._drawn: dict = {}  # chart name -> (what it was drawn from, its lines): a chart that did not move is reused

    def rows_per_chart(self) -> int:
        n = max(1, len(self.view.chart_names()))
        avail = self.parent.size.height if self.parent is not None else 0
        return max(1, min(self.MAX_ROWS, avail // n))

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.view.chart_names()) * self.rows_per_chart())

    def render(self) -> Text:
        return Text("\n").join(self.text_lines())

    def text_lines(self) -> list[Text]:
        width = self.size.width
        name_w, val_w = 13, 9
        rows = self.rows_per_chart()
        lines: list[Text] = []
        drawn = {}
        for name in self.view.chart_names():
            series = self.view.charts[name]
            version = getattr(series, "version", None)
            key = (id(series), version, width, rows)
            old = self._drawn.get(name)
            if version is not None and old is not None and old[0] == key:
                drawn[name] = old
                lines.extend(old[1])
                continue
            first = len(lines)
            values, marks = series.points()
            rng = f" {_short(min(values))}..{_short(max(values))}" if values else ""
            spark_w = width - name_w - val_w - len(rng)
            if spark_w < 8:  # too narrow for the range: give the room to the chart
                rng, spark_w = "", width - name_w - val_w
            spark_w = max(spark_w, 1)
            cur = fmt(series.last, ".2%") if name.endswith("val acc") and series.last is not None else fmt(series.last)
            lines.extend(_chart_lines(name[:name_w - 1].ljust(name_w), f"{cur[:val_w - 1]:>{val_w - 1}} ", values, marks,
                                      spark_w, rows, rng, "red" if "loss" in name else "green"))
            drawn[name] = (key, lines[first:])
        self._drawn = drawn
        return lines


def _chart_lines(name: str, cur: str, values: list, marks: list, width: int, rows: int, rng: str, style: str) -> list[Text]:
    """One chart's lines, built straight from plain data (the same text and spans as appending the
    pieces one by one, at a fraction of the cost): name (bold) and value on the first row, the
    sparkline, its range after the last row."""
    mark_style = "bold yellow"
    head, bold = name + cur, Span(0, len(name), "bold")
    if rows <= 1:
        line = Text(head, spans=[bold])
        line.append_text(sparkline(values, marks, width, style, mark_style))
        line.append(rng, style="grey62")
        return [line]
    cells, mks = sparkcells(values, marks, width, rows)
    col_runs = runs(mks)
    blank = " " * len(head)
    out = []
    for r, chars in enumerate(cells):
        plain = (head if r == 0 else blank) + chars + " " * (width - len(chars))
        off = len(head)
        spans = [bold] if r == 0 else []
        spans += [Span(off + a, off + b, mark_style if m else style) for a, b, m in col_runs]
        if r == rows - 1 and rng:
            spans.append(Span(len(plain), len(plain) + len(rng), "grey62"))
            plain += rng
        out.append(Text(plain, spans=spans))
    return out


class EventList(LineWidget):
    """The newest events, newest at the bottom. Its size never changes with its content (a growing
    scrollable log relayouts the whole screen on every line); the full record is the event log."""

    DEFAULT_CSS = "EventList { height: 1fr; }"

    def __init__(self, keep: int = 500, **kw):
        super().__init__(**kw)
        self.lines: deque = deque(maxlen=keep)  # (style, text)
        self.undrawn = False  # lines kept but not drawn yet (routine lines wait for their batch)

    def add(self, lines: list[tuple[str, str]], redraw: bool = True) -> bool:
        """Keep `lines`; draw what is new when `redraw` (else later: a new line scrolls every line of the
        list, so routine lines are drawn in batches). Returns whether it drew."""
        if lines:
            self.lines.extend(lines)
            self.undrawn = True
        if self.undrawn and redraw:
            self.undrawn = False
            self.update_lines()
            return True
        return False

    def plain(self) -> str:
        return "\n".join(text for _, text in self.lines)

    def render(self) -> Text:
        return Text("\n").join(self.text_lines())

    def text_lines(self) -> list[Text]:
        height, width = self.size.height, self.size.width
        shown = list(self.lines)[-height:] if height > 0 else []
        return [Text(text[:width], style=style, no_wrap=True) for style, text in shown]
