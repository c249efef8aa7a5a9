"""The main screen's layout and chart keys, shared by the live app and replay.

`RunApp` composes the widgets around a view (a `RunView` live, a `ReviewView` in
replay: the same interface): the status lines; the charts beside the event list;
the knob table, the selected knob's detail line, the notice line, the footer.
`redraw()` brings every widget to the view in one frame (each repaints only the
lines that changed), so what is on screen is one moment. Notifications go to the
notice line (`notify`), never over the table. Keys for the charts: z shows one
chart in the whole panel ([ and ] the previous / next), x the window (the whole
run or the last N steps), l a log scale, s the loss' smoothing, m braille lines or
block bars; f filters the event list; tab moves between the table and the list.
A live screen (`OUTPUT_PANE`) also has the output pane (`ui.console`), which `o`
shows in the charts' place.
What moves the view (a run's events, a timeline cursor) is the subclass's
business. Textual and rich only; never imports torch.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer

from schedtui.ui.charts import MODES, SMOOTHING, Charts
from schedtui.ui.console import OutputPane
from schedtui.ui.eventlist import EventList
from schedtui.ui.knobtable import DetailLine, KnobTable
from schedtui.ui.notice import NoticeLine
from schedtui.ui.status import StatusBar

CHART_KEYS = [
    ("z", "one chart in the whole panel ([ / ] the others); again: all"),
    ("x", "chart window: the whole run, or the last 200, 2,000... steps"),
    ("l", "log scale (charts with values <= 0 stay linear)"),
    ("s", "training loss smoothing: 0, 0.6, 0.9, 0.99 (raw faint behind)"),
    ("m", "braille lines or block bars (auto: lines from 3 rows)"),
    ("f", "event list filter: all, edits, pauses, SWA, checkpoints, ..."),
    ("tab", "move between the knob table and the event list"),
]


class RunApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "schedtui"
    STATUS_BAR = StatusBar
    OUTPUT_PANE = False  # the training's output, `o` (a live run)
    BINDINGS = [
        Binding("z", "zoom", "Zoom", show=False),
        Binding("left_square_bracket", "chart(-1)", "Prev chart", show=False),
        Binding("right_square_bracket", "chart(1)", "Next chart", show=False),
        Binding("x", "window", "Window", show=False),
        Binding("l", "log_scale", "Log", show=False),
        Binding("s", "smoothing", "Smooth", show=False),
        Binding("m", "chart_mode", "Lines/bars", show=False),
        Binding("f", "filter", "Filter", show=False),
    ]

    def __init__(self, view, refresh_hz: float = 10.0):
        super().__init__()
        self.view = view
        self.refresh_hz = refresh_hz

    def compose(self) -> ComposeResult:
        # kept as attributes: App.query_one searches the active screen, which may be a dialog
        self.status_bar = self.STATUS_BAR(self.view, id="status")
        self.charts = Charts(self.view, id="charts")
        self.event_log = EventList(self.view, id="events")
        self.table = KnobTable(self.view, id="knobs")
        self.detail = DetailLine(self.view, self.table, id="detail")
        self.notice = NoticeLine(id="notice")
        self.output = OutputPane(id="output")
        yield self.status_bar
        with Horizontal(id="main"):
            if self.OUTPUT_PANE:
                yield self.output
            yield self.charts
            yield self.event_log
        yield self.table
        yield self.detail
        yield self.notice
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self._size_panes()
        self.mounted()

    def mounted(self) -> None:
        """The subclass's start, once the screen is up (Textual would call a subclass's on_mount first)."""

    def on_resize(self) -> None:
        self._size_panes()

    def _size_panes(self) -> None:
        width, height = self.size
        self.event_log.styles.width = max(28, min(72, int(width * 0.34)))
        self.table.max_rows = max(3, (height - 14) // 3)
        self.table.refresh(layout=True)
        self.charts.refresh(layout=True)

    def redraw(self) -> None:
        """Every widget brought to the view at once: one moment on screen."""
        self.status_bar.update_lines()
        self.charts.update_lines()
        self.event_log.update_lines()
        self.table.update_lines()
        self.detail.update_lines()
        self.notice.update_lines()

    def knob_selected(self) -> None:
        self.detail.update_lines()

    def notify(self, message: str, *, title: str = "", severity: str = "information", timeout: float | None = None,
               markup: bool = True) -> None:
        """On the notice line, over nothing (a toast would cover the knob table)."""
        self.notice.show(f"{title}: {message}" if title else message, severity)

    # ---- chart keys -----------------------------------------------------------------------------
    def action_zoom(self) -> None:
        charts = self.charts
        if charts.zoomed is None:
            keys = charts.chart_keys()
            knob = self.table.selected_knob()
            charts.zoomed = f"knob:{knob}" if f"knob:{knob}" in keys else (keys[0] if keys else None)
            self.screen.add_class("zoomed")
            self.notice.show("one chart: [ and ] the others, z all of them", "hint")
        else:
            charts.zoomed = None
            self.screen.remove_class("zoomed")
        charts.refresh(layout=True)

    def action_chart(self, direction: int) -> None:
        charts = self.charts
        keys = charts.chart_keys()
        if charts.zoomed is None or not keys:
            return
        i = keys.index(charts.zoomed) if charts.zoomed in keys else 0
        charts.zoomed = keys[(i + direction) % len(keys)]
        charts.refresh()

    def action_window(self) -> None:
        choices = self.charts.windows()
        i = choices.index(self.charts.window) if self.charts.window in choices else 0
        self.charts.window = choices[(i + 1) % len(choices)]
        self.notice.show("charts: the whole run" if self.charts.window is None else f"charts: the last {self.charts.window:,} steps",
                         "hint")
        self.charts.refresh()

    def action_log_scale(self) -> None:
        self.charts.log_scale = not self.charts.log_scale
        self.notice.show("charts: log scale (charts with values <= 0 stay linear)" if self.charts.log_scale
                         else "charts: linear scale", "hint")
        self.charts.refresh()

    def action_smoothing(self) -> None:
        i = SMOOTHING.index(self.charts.smoothing) if self.charts.smoothing in SMOOTHING else 0
        self.charts.smoothing = SMOOTHING[(i + 1) % len(SMOOTHING)]
        self.notice.show(f"training loss smoothing {self.charts.smoothing:g}" + (" (off)" if not self.charts.smoothing else ""),
                         "hint")
        self.charts.refresh()

    def action_chart_mode(self) -> None:
        self.charts.mode = MODES[(MODES.index(self.charts.mode) + 1) % len(MODES)]
        self.notice.show({"auto": "charts: braille lines from 3 rows a chart, block bars below", "braille": "charts: braille lines",
                          "blocks": "charts: block bars"}[self.charts.mode], "hint")
        self.charts.refresh()

    def action_filter(self) -> None:
        self.notice.show(f"event list: {self.event_log.cycle_filter()}", "hint")
