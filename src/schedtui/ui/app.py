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

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from schedtui.errors import UserError
from schedtui.ui import LIVE_REFRESH_HZ
from schedtui.ui.base import RunApp
from schedtui.ui.edit import EditDialog
from schedtui.ui.screens import ConfirmQuit, HelpScreen
from schedtui.ui.view import RunView

TABLE_PERIOD_S = 1.0  # the knob table's values follow at this rate (the charts show them every frame)
LIST_PERIOD_S = 1.0  # routine lines (an evaluation each epoch) reach the event list at this rate; the rest at once
DESCRIBE_PERIOD_S = 1.0  # an epoch's end asks the engine for the knobs' next changes at most this often
URGENT_FOR_TABLE = ("header", "edit", "end")  # shown in the knob table (and described) at once, not at the next period


def _routine(ev: dict) -> bool:
    """Events that come every step or epoch: their lines can wait for the next batch."""
    t = ev.get("type")
    return t in ("step", "epoch") or (t == "eval" and ev.get("reason") == "epoch") or (t == "swa" and ev.get("op") == "update")


class TrainApp(RunApp):
    BINDINGS = [
        Binding("space", "toggle_pause", "Pause"),
        Binding("e", "edit", "Edit"),
        Binding("r", "revert", "Revert"),
        Binding("v", "validate", "Val"),
        Binding("c", "checkpoint", "Ckpt"),
        Binding("w", "swa", "SWA"),
        Binding("b", "update_bn", "BN", show=False),
        Binding("question_mark", "help", "Keys", key_display="?"),
        Binding("q", "quit_run", "Quit"),
    ]

    def __init__(self, source, refresh_hz: float = LIVE_REFRESH_HZ):
        super().__init__(RunView(), refresh_hz)
        self.source = source
        self.quitting = False
        self.startup_error: str | None = None
        self._describing = False
        self._describe_urgent = True
        self._described_at = 0.0
        self._list_at = 0.0

    def mounted(self) -> None:
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
        urgent = any(ev.get("type") in URGENT_FOR_TABLE for ev in events)
        if events:
            self._describe_urgent = self._describe_urgent or urgent
            self._table_dirty = True
            self._redraw_charts()
        self._redraw_held(urgent=urgent, routine=all(_routine(ev) for ev in events))
        if (self.view.stale_info and self.source.live and self.view.state and not self.source.ended and not self._describing
                and (self._describe_urgent or time.monotonic() - self._described_at >= DESCRIBE_PERIOD_S)):
            # the engine answers at a step boundary (a next-change search per knob) and the table redraws:
            # fine once a second, too much for every epoch of a fast run
            self._describing, self._describe_urgent = True, False
            self._described_at = time.monotonic()
            self.view.stale_info = False  # an epoch or edit from here on asks again
            self.run_worker(self._describe(), group="describe")
        if self.quitting and self.source.ended:
            self.exit()

    def _redraw_held(self, urgent: bool, routine: bool) -> None:
        """The event list and the knob table, each frame whether or not events came. Values move every
        step and a table render costs ~10 ms here, so the knob table follows at TABLE_PERIOD_S, and routine
        event-list lines at LIST_PERIOD_S; edits (and the engine's describe answers), pauses, warnings and
        the like show at once, and what was held back is drawn when its period is up even if nothing new
        comes. Every frame holds the GIL that the training thread needs: it is kept to the lines that
        changed (benchmarks/overhead.py measures the cost)."""
        now = time.monotonic()
        if self.event_log.add(self.view.take_lines(), redraw=not routine or now - self._list_at >= LIST_PERIOD_S):
            self._list_at = now
        if self._table_dirty and (urgent or now - self._table_at >= TABLE_PERIOD_S):
            self._update_table()

    def _notify_for(self, ev: dict) -> None:
        t = ev.get("type")
        if t == "pause" and ev.get("reason") not in (None, "user"):
            self.notify(f"paused at step {ev['step']}: {ev['reason']}. Edit a knob (e), then space resumes.", severity="warning", timeout=15)
        elif t == "error":
            self.notify(f"training crashed: {ev.get('message')}\ntraceback: {ev.get('traceback_file')}", severity="error", timeout=60)
        elif t == "end" and ev.get("status") == "completed":
            self.notify("run completed; q quits", timeout=10)
        elif t == "end" and ev.get("reason"):
            self.notify(f"run {ev.get('status')}: {ev['reason']}; q quits", severity="warning", timeout=30)

    def _startup_failed(self, err: BaseException) -> None:
        self.startup_error = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
        self.exit(return_code=2 if isinstance(err, UserError) else 1)

    async def _describe(self) -> None:
        try:
            result = await asyncio.wrap_future(self.source.send("describe"))
            self.view.knob_info = result["knobs"]
            self._update_table()
        except UserError:
            self.view.stale_info = True
        finally:
            self._describing = False

    # ---- actions -------------------------------------------------------------------------------
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

    def action_swa(self) -> None:
        """Start SWA at the next step boundary, or end averaging when it runs."""
        st = self.view.state
        if st is not None and st.swa:
            self._command("swa", "SWA stopped at step {step}: {n_averaged} models averaged", op="stop")
        else:
            self._command("swa", "SWA started at step {step}: the lr anneals to swa_lr, weights averaged", op="start")

    def action_update_bn(self) -> None:
        self._command("swa", "update_bn on the SWA model at step {step}, then evaluated", op="update_bn")

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
        yield SystemCommand("swa start / swa stop", "Start averaging weights (SWA, lr to its SWA phase), or stop", self.action_swa)
        yield SystemCommand("swa update_bn", "Recompute the SWA model's BatchNorm statistics, then evaluate it", self.action_update_bn)
        yield SystemCommand("Keys", "Every key schedtui answers to", self.action_help)
        yield SystemCommand("Quit", "Stop the run (asks first) and quit", self.action_quit_run)
        yield from super().get_system_commands(screen)
