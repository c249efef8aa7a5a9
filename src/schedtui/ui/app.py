"""The live terminal UI: watch every scheduled value, pause, live-edit, steer a run.

The app reads its run source about `refresh_hz` times a second (never per
training step), folds the new events into a `RunView`, and redraws the status
line, charts, knob table and event list once per frame. Commands go to the run
through `source.send` and are awaited off the UI's event loop, so the app never
blocks the training thread and the training thread never waits for the app.
Textual and rich only; never imports torch.
"""

from __future__ import annotations

import asyncio
import time
from typing import Iterable

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from schedtui.errors import UserError
from schedtui.ui.edit import EditDialog
from schedtui.ui.screens import ConfirmQuit, HelpScreen
from schedtui.ui.view import RunView
from schedtui.ui.widgets import Charts, EventList, StatusBar

COLUMNS = (("knob", "knob", 15), ("value", "value", 10), ("schedule", "schedule", 24), ("edit", "edit", 6), ("next", "next change", 12))
SCHEDULE_WIDTH = 24
TABLE_PERIOD_S = 0.5
URGENT_FOR_TABLE = ("header", "edit", "end")  # shown in the knob table at once, not at the next period


class TrainApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "schedtui"
    BINDINGS = [
        Binding("space", "toggle_pause", "Pause"),
        Binding("e", "edit", "Edit"),
        Binding("r", "revert", "Revert"),
        Binding("v", "validate", "Validate"),
        Binding("c", "checkpoint", "Ckpt"),
        Binding("question_mark", "help", "Keys", key_display="?"),
        Binding("q", "quit_run", "Quit"),
    ]

    def __init__(self, source, refresh_hz: float = 10.0):
        super().__init__()
        self.source = source
        self.refresh_hz = refresh_hz
        self.view = RunView()
        self.quitting = False
        self.startup_error: str | None = None
        self._describing = False
        self._rows: dict[str, tuple] = {}
        self._table_at = 0.0
        self._n_charts = 0

    def compose(self) -> ComposeResult:
        # kept as attributes: App.query_one searches the active screen, which may be a dialog
        self.status_bar = StatusBar(self.view, id="status")
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
        table = self.table
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        table.focus()
        self.source.begin()
        self.set_interval(1.0 / self.refresh_hz, self.tick)

    # ---- the frame -----------------------------------------------------------------------------
    def tick(self) -> None:
        if self.source.error is not None and self.startup_error is None:
            self._startup_failed(self.source.error)
            return
        events = self.source.poll()
        for ev in events:
            self.view.apply(ev)
            self._notify_for(ev)
        if events:
            self._redraw(urgent=any(ev.get("type") in URGENT_FOR_TABLE for ev in events))
        if self.view.stale_info and self.source.live and self.view.state and not self.source.ended and not self._describing:
            self._describing = True
            self.run_worker(self._describe(), group="describe")
        if self.quitting and self.source.ended:
            self.exit()

    def on_resize(self) -> None:
        self.charts.refresh(layout=True)

    def _redraw(self, urgent: bool = False) -> None:
        self.status_bar.refresh()
        charts = self.charts
        n = len(self.view.chart_names())
        charts.refresh(layout=n != self._n_charts)
        self._n_charts = n
        self.event_log.add(self.view.take_lines())
        if urgent or time.monotonic() - self._table_at >= TABLE_PERIOD_S:
            self._update_table()

    def _update_table(self) -> None:
        """Knob rows. Values move every step and a DataTable render costs ~20 ms here, so values follow
        at TABLE_PERIOD_S; edits (and the engine's describe answers) show at once."""
        self._table_at = time.monotonic()
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

    def _notify_for(self, ev: dict) -> None:
        t = ev.get("type")
        if t == "pause" and ev.get("reason") not in (None, "user"):
            self.notify(f"paused at step {ev['step']}: {ev['reason']}. Edit a knob (e), then space resumes.", severity="warning", timeout=15)
        elif t == "error":
            self.notify(f"training crashed: {ev.get('message')}\ntraceback: {ev.get('traceback_file')}", severity="error", timeout=60)
        elif t == "end" and ev.get("status") == "completed":
            self.notify("run completed; q quits", timeout=10)

    def _startup_failed(self, err: BaseException) -> None:
        self.startup_error = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
        self.exit(return_code=2 if isinstance(err, UserError) else 1)

    async def _describe(self) -> None:
        try:
            result = await asyncio.wrap_future(self.source.send("describe"))
            self.view.knob_info = result["knobs"]
            self.view.stale_info = False
            self._update_table()
        except UserError:
            pass
        finally:
            self._describing = False

    # ---- actions -------------------------------------------------------------------------------
    def _selected_knob(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _command(self, command: str, done: str | None = None, **args) -> None:
        async def go():
            try:
                ev = await asyncio.wrap_future(self.source.send(command, **args))
            except UserError as e:
                self.notify(str(e), severity="error")
                return
            if done:
                self.notify(done.format(**ev))

        self.run_worker(go(), group="commands")

    def action_toggle_pause(self) -> None:
        st = self.view.state
        if st is not None and st.status == "paused":
            self._command("resume")
        else:
            self._command("pause")

    def action_edit(self) -> None:
        knob = self._selected_knob()
        if knob is None:
            self.notify("no knobs yet: the run is still starting", severity="warning")
            return
        if not self.source.live or self.source.ended:
            self.notify("the run has ended: nothing to edit", severity="warning")
            return
        current = self.view.state.knobs.get(knob) if self.view.state else None

        def applied(ev: dict | None) -> None:
            if ev:
                self.notify(f"{ev['knob']} {ev['op']}: {ev['old']:.4g} -> {ev['new']:.4g} from step {ev['step'] + 1}")

        self.push_screen(EditDialog(self.source, knob, self.view.knob_info.get(knob, {}), current), applied)

    def action_revert(self) -> None:
        knob = self._selected_knob()
        if knob is not None:
            self._command("edit", "{knob} back to its preset schedule from step {step}", knob=knob, op="revert")

    def action_validate(self) -> None:
        self._command("validate", "validation at step {step}: loss {loss:.4g}, accuracy {acc:.2%}")

    def action_checkpoint(self) -> None:
        self._command("checkpoint", "checkpoint saved: {path}")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_quit_run(self) -> None:
        if self.source.live and not self.source.ended and self.source.engine is not None:
            def answered(yes: bool | None) -> None:
                if yes:
                    self.quitting = True
                    self.status_bar.note = "stopping..."
                    self._command("stop")

            self.push_screen(ConfirmQuit(), answered)
        else:
            self.exit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("Pause / resume", "Pause the run at the next step, or resume it", self.action_toggle_pause)
        yield SystemCommand("Edit knob", "Set, scale or reschedule the selected knob", self.action_edit)
        yield SystemCommand("Revert knob", "Back to the preset schedule for the selected knob", self.action_revert)
        yield SystemCommand("Validate now", "Evaluate on the validation set now", self.action_validate)
        yield SystemCommand("Checkpoint now", "Save model, optimizer and schedules now", self.action_checkpoint)
        yield SystemCommand("Keys", "Every key schedtui answers to", self.action_help)
        yield SystemCommand("Quit", "Stop the run (asks first) and quit", self.action_quit_run)
        yield from super().get_system_commands(screen)
