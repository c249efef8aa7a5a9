"""The live terminal UI: watch every scheduled value, pause, live-edit, steer a run.

The app reads its run source about `refresh_hz` times a second (never per
training step), folds the new events into a `RunView`, and brings every widget to
it in the same frame (`RunApp.redraw`: only the lines that changed are repainted),
so the status line, charts, knob table and event list show one moment. A source
with recorded history (a resumed run) is first seeded from its log (`ui.history`,
read on a worker thread; the polled events wait meanwhile), so the screen shows
the whole run. Commands go to the run through `source.send` and are awaited off
the UI's event loop, so the app never blocks the training thread and the training
thread never waits for the app; what they did is said on the notice line. The
resource line (CPU, memory, GPU) is sampled here, on the UI thread. Textual and
rich only; never imports torch.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Iterable

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from schedtui.errors import UserError
from schedtui.safe_text import visible
from schedtui.ui import LIVE_REFRESH_HZ, history
from schedtui.ui.base import CHART_KEYS, RunApp
from schedtui.ui.edit import EditDialog
from schedtui.ui.resources import Resources
from schedtui.ui.screens import KEYS, HelpScreen, QuitDialog
from schedtui.ui.text import fmt
from schedtui.ui.view import RunView

DESCRIBE_PERIOD_S = 1.0  # an epoch's end asks the engine for the knobs' next changes at most this often
URGENT = ("header", "edit", "end")  # the knobs are described again at once after these


class TrainApp(RunApp):
    OUTPUT_PANE = True
    BINDINGS = [
        Binding("space", "toggle_pause", "Pause"),
        Binding("e", "edit", "Edit"),
        Binding("r", "revert", "Revert"),
        Binding("v", "validate", "Val"),
        Binding("c", "checkpoint", "Ckpt"),
        Binding("w", "swa", "SWA"),
        Binding("b", "update_bn", "BN", show=False),
        Binding("o", "output", "Output", show=False),
        Binding("question_mark", "help", "Keys", key_display="?"),
        Binding("q", "quit_run", "Quit"),
    ]

    def __init__(self, source, refresh_hz: float = LIVE_REFRESH_HZ):
        super().__init__(RunView(), refresh_hz)
        self.source = source
        self._output_hinted = False
        self.quitting = False
        self.detached = False  # q, then d: the screen closed, the run goes on
        self.startup_error: str | None = None
        self._describing = False
        self._describe_urgent = True
        self._described_at = 0.0
        self._held: list[dict] | None = None  # polled while the history is read
        self._seen_seq = -1  # the last seq the history gave the view: polled events up to it are skipped
        self._hinted = False

    def mounted(self) -> None:
        self.notice.show("q: detach (the run goes on) or stop it · ? keys", "hint")
        self.source.begin()
        self.set_interval(1.0 / self.refresh_hz, self.tick)
        self.call_after_refresh(self.tick)  # what the source has already (an attached run's header), at once

    # ---- the frame -----------------------------------------------------------------------------
    def tick(self) -> None:
        if getattr(self.source, "dismissed", False):  # the process that runs the training closes its screen
            self.exit()
            return
        if self.source.error is not None and self.startup_error is None:
            self._startup_failed(self.source.error)
            return
        events = self.source.poll()
        if self._held is not None:  # the history is being read: the events wait for it
            self._held += events
            return
        if events and getattr(self.source, "history", None) is not None and self._seen_seq < 0:
            self._read_history(events)
            return
        if self._seen_seq >= 0:  # what the history gave the view already
            events = [ev for ev in events if not (isinstance(ev.get("seq"), int) and ev["seq"] <= self._seen_seq)]
        self.view.apply_all(events)
        urgent = False
        for ev in events:
            if ev.get("type") != "step":
                self._notice_for(ev)
                urgent = urgent or ev.get("type") in URGENT
        if urgent:
            self._describe_urgent = True
        self._pull_output()
        if self.view.header is not None and self.status_bar.resources is None:
            pid = getattr(self.source, "pid", None) or (os.getpid() if self.source.engine is not None else None)
            if pid is not None:  # the run's own process: this one, or the one a source names
                self.status_bar.resources = Resources(self.view.header.get("device"), pid)
        if events:
            self.redraw()
        else:  # nothing new from the run (paused, or slow steps): only what moves by itself
            self.status_bar.update_lines()
            self.notice.update_lines()
        if (self.view.stale_info and self.source.live and self.view.state and not self.source.ended and not self._describing
                and (self._describe_urgent or time.monotonic() - self._described_at >= DESCRIBE_PERIOD_S)):
            # the engine answers at a step boundary (a next-change search per knob): fine once a second,
            # too much for every epoch of a fast run
            self._describing, self._describe_urgent = True, False
            self._described_at = time.monotonic()
            self.view.stale_info = False  # an epoch or edit from here on asks again
            self.run_worker(self._describe(), group="describe")
        if self.quitting and self.source.ended:
            self.exit()

    def _pull_output(self) -> None:
        """The output pane takes what the training printed (its file, once the run has a directory)."""
        run_dir = getattr(self.source, "run_dir", None)
        if run_dir is None:
            return
        self.output.follow(run_dir / "output.log")
        lines = self.output.pull()
        if lines and not self._output_hinted:
            self._output_hinted = True
            said = visible(lines[-1])
            self.notice.show(f"o shows the training's output: {said[:40]}{'…' if len(said) > 40 else ''}", "hint")

    def action_output(self) -> None:
        """The training's output in the charts' place, or the charts again."""
        screen = self.screen_stack[0]  # the main screen (a dialog may be on top)
        self._output_hinted = True
        if screen.has_class("output"):
            screen.remove_class("output")
            self.notice.show("charts", "hint")
        else:
            screen.add_class("output")
            tail = self.output.tail
            if tail is None:
                said = "no output yet: the run is starting"
            elif not self.output.lines:
                said = f"the training has printed nothing yet (it would go to {visible(tail.path)})"
            else:
                said = f"the training's output, newest last: {visible(tail.path)}"
            self.notice.show(said, "hint")

    def _read_history(self, events: list[dict]) -> None:
        self._held = events
        path = self.source.history
        self.status_bar.starting = f"reading the run's history from {visible(path)}..."
        self.status_bar.update_lines()

        def work() -> None:
            try:
                tl = history.read(path)
            except Exception as e:  # a log that cannot be read: the screen goes on from the polled events
                self.call_from_thread(self._seeded, None, f"{type(e).__name__}: {e}")
                return
            self.call_from_thread(self._seeded, tl, None)

        self.run_worker(work, thread=True, group="history", exit_on_error=False)

    def _seeded(self, tl, error: str | None) -> None:
        held, self._held = self._held or [], None
        if tl is not None:
            self._seen_seq = history.seed(self.view, tl)
            self._hint(tl.header)
            skipped = len(tl.warnings) + tl.dropped_warnings
            if skipped:
                self.notify(f"the run's history: {skipped} log problem{'s' if skipped != 1 else ''} skipped "
                            f"(schedtui replay lists them)", severity="warning")
        else:
            self._seen_seq = 0
            self.notify(f"the run's history could not be read: {error}", severity="error")
        for ev in held:
            if not (isinstance(ev.get("seq"), int) and ev["seq"] <= self._seen_seq and tl is not None):
                self.view.apply(ev)
                self._notice_for(ev)
        self._describe_urgent = True
        self.redraw()
        self.tick()

    def _notice_for(self, ev: dict) -> None:
        t = ev.get("type")
        if t == "header":
            self._hint(ev)
        elif t == "pause" and ev.get("reason") not in (None, "user"):
            self.notify(f"paused at step {ev.get('step')}: {visible(ev['reason'])}. Edit a knob (e), then space resumes.",
                        severity="warning")
        elif t == "error":
            self.notify(f"training crashed: {visible(ev.get('message'))} (traceback: {visible(ev.get('traceback_file'))})",
                        severity="error")
        elif t == "end" and ev.get("status") == "completed":
            self.notify("run completed; q quits")
        elif t == "end" and ev.get("reason"):
            self.notify(f"run {visible(ev.get('status'))}: {visible(ev['reason'])}; q quits", severity="warning")

    def _hint(self, header: dict) -> None:
        """The first screen's word on how long the run is and how to end it sooner (once)."""
        if self._hinted:
            return
        self._hinted = True
        cfg = header.get("config") if isinstance(header.get("config"), dict) else {}
        self.notice.show(f"{visible(cfg.get('epochs', '?'))} epochs × {visible(header.get('steps_per_epoch', '?'))} steps · "
                         "q: detach, or stop sooner · ? keys", "hint")

    def _startup_failed(self, err: BaseException) -> None:
        self.startup_error = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
        self.exit(return_code=2 if isinstance(err, UserError) else 1)

    async def _describe(self) -> None:
        try:
            result = await asyncio.wrap_future(self.source.send("describe"))
            self.view.knob_info = result["knobs"]
            self.table.update_lines()
            self.detail.update_lines()
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
                try:
                    said = done.format(**{k: visible(v) if isinstance(v, str) else v for k, v in ev.items()})
                except (KeyError, ValueError, TypeError):  # a field missing or of another kind (no accuracy)
                    said = f"{command}: done at step {ev.get('step')}"
                self.notify(said)

        self.run_worker(go(), group="commands")

    def action_toggle_pause(self) -> None:
        st = self.view.state
        self._command("resume" if st is not None and st.status == "paused" else "pause")

    def action_edit(self) -> None:
        knob = self.table.selected_knob()
        if knob is None:
            self.notify("no knobs yet: the run is still starting", severity="warning")
            return
        if not self.source.live or self.source.ended:
            self.notify("the run has ended: nothing to edit", severity="warning")
            return
        current = self.view.state.knobs.get(knob) if self.view.state else None

        def applied(ev: dict | None) -> None:
            if ev:
                self.notify(f"{visible(ev['knob'])} {ev['op']}: {fmt(ev.get('old'))} -> {fmt(ev.get('new'))} "
                            f"from step {ev['step'] + 1}")

        self.push_screen(EditDialog(self.source, knob, self.view.knob_info.get(knob, {}), current), applied)

    def action_revert(self) -> None:
        knob = self.table.selected_knob()
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
        self.push_screen(HelpScreen(KEYS + CHART_KEYS))

    def action_quit_run(self) -> None:
        """While the run goes: ask whether to detach (the screen closes, the run goes on), stop it (checkpoint
        and end), or cancel. After it has ended (or for a recording): quit."""
        if self.source.live and not self.source.ended and self.source.header is not None:  # (started)
            run_dir = getattr(self.source, "run_dir", None)
            hint = "schedtui attach" if run_dir is None else f"schedtui attach {run_dir}"

            def answered(what: str | None) -> None:
                if what == "detach":
                    self.action_detach()
                elif what == "stop":
                    self.action_stop_run()

            self.push_screen(QuitDialog(hint), answered)
        else:
            self.exit()

    def action_detach(self) -> None:
        """Close the screen; the run goes on (`schedtui attach` brings the screen back)."""
        self.detached = not self.source.ended
        self.exit()

    def action_stop_run(self) -> None:
        """Stop the run (a checkpoint, then its end); the screen closes once it has ended."""
        if self.source.ended:
            self.exit()
            return
        self.quitting = True
        self.status_bar.note = "stopping..."
        self._command("stop")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("Pause / resume", "Pause the run at the next step, or resume it", self.action_toggle_pause)
        yield SystemCommand("Edit knob", "Set, scale or reschedule the selected knob", self.action_edit)
        yield SystemCommand("Revert knob", "Back to the preset schedule for the selected knob", self.action_revert)
        yield SystemCommand("Validate now", "Evaluate on the validation set now", self.action_validate)
        yield SystemCommand("Checkpoint now", "Save model, optimizer and schedules now", self.action_checkpoint)
        yield SystemCommand("swa start / swa stop", "Start averaging weights (SWA, lr to its SWA phase), or stop", self.action_swa)
        yield SystemCommand("swa update_bn", "Recompute the SWA model's BatchNorm statistics, then evaluate it", self.action_update_bn)
        yield SystemCommand("Zoom a chart", "One chart in the whole panel ([ and ] the others), or all of them", self.action_zoom)
        yield SystemCommand("Chart window", "The whole run, or the last N steps", self.action_window)
        yield SystemCommand("Log scale", "Log or linear y-axis for the charts", self.action_log_scale)
        yield SystemCommand("Loss smoothing", "Smooth the training loss more, or less", self.action_smoothing)
        yield SystemCommand("Filter events", "All events, or only edits, pauses, SWA, checkpoints, problems", self.action_filter)
        yield SystemCommand("Output", "What the training printed (RUN_DIR/output.log), in the charts' place", self.action_output)
        yield SystemCommand("Keys", "Every key schedtui answers to", self.action_help)
        yield SystemCommand("Detach", "Close this screen; the run goes on (schedtui attach brings it back)", self.action_detach)
        yield SystemCommand("Stop the run", "Checkpoint and end the run, then quit", self.action_stop_run)
        yield from super().get_system_commands(screen)
