"""The main screen's layout, shared by the live app and replay: status line, charts, events, knob table.

`RunApp` composes the widgets around a view (a `RunView` live, a `ReviewView` in
replay: the same interface) and keeps the knob table in step with it. What moves
the view (a run's events, a timeline cursor) is the subclass's business.
Textual and rich only; never imports torch.
"""

from __future__ import annotations

import time

from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer

from schedtui.ui.widgets import Charts, EventList, StatusBar

COLUMNS = (("knob", "knob", 15), ("value", "value", 10), ("schedule", "schedule", 24), ("edit", "edit", 6), ("next", "next change", 12))
SCHEDULE_WIDTH = 24


class RunApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "schedtui"
    STATUS_BAR = StatusBar

    def __init__(self, view, refresh_hz: float = 10.0):
        super().__init__()
        self.view = view
        self.refresh_hz = refresh_hz
        self._rows: dict[str, tuple] = {}
        self._table_at = 0.0
        self._table_dirty = False  # events came since the knob table was last updated
        self._n_charts = 0

    def compose(self) -> ComposeResult:
        # kept as attributes: App.query_one searches the active screen, which may be a dialog
        self.status_bar = self.STATUS_BAR(self.view, id="status")
        self.charts = Charts(self.view, id="charts")
        self.event_log = EventList(id="events")
        self.table = DataTable(id="knobs", cursor_type="row", zebra_stripes=True)
        yield self.status_bar
        with Horizontal(id="main"):
            with VerticalScroll(id="chart-pane"):
                yield self.charts
            yield self.event_log
        yield self.table
        yield Footer()

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.table.add_column(label, key=key, width=width)
        self.table.focus()
        self.mounted()

    def mounted(self) -> None:
        """The subclass's start, once the screen is up (Textual would call a subclass's on_mount first)."""

    def on_resize(self) -> None:
        self.charts.refresh(layout=True)

    def _redraw_charts(self) -> None:
        """The status line and the charts, once a frame: only their lines that changed are repainted."""
        self.status_bar.update_lines()
        n = len(self.view.chart_names())
        if n != self._n_charts:
            self.charts.refresh(layout=True)
        else:
            self.charts.update_lines()
        self._n_charts = n

    def _update_table(self) -> None:
        """Knob rows: only the cells that changed are updated (a DataTable render costs ~20 ms here)."""
        self._table_at, self._table_dirty = time.monotonic(), False
        table = self.table
        for row in self.view.knob_rows():
            row = (row[0], row[1], row[2][:SCHEDULE_WIDTH], row[3], row[4])
            old = self._rows.get(row[0])
            if old is None:
                table.add_row(*row, key=row[0])
            else:
                for key, a, b in zip(("knob", "value", "schedule", "edit", "next"), old, row):
                    if a != b:
                        table.update_cell(row[0], key, b)
            self._rows[row[0]] = row

    def _selected_knob(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
