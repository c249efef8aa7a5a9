"""`schedtui replay`: the main screen in review mode, read-only, with a timeline cursor and playback.

The log is indexed on a worker thread (`events.timeline`), so the screen is up at
once and fills in as it loads; with `follow` the file is read again every half
second and a cursor at the end stays at the end (`tail -f`) until the run's `end`
event comes. The cursor moves a step (left/right), an epoch (page keys), to either
end (home/end) or to the next or previous notable event (n/N); space plays from
the cursor at 1x, 10x or 100x (+/-), in the run's own time or compressed (t: one
epoch a second at 1x). Every widget shows the run as it stood at the cursor
(`ReviewView`). A log that cannot be read to its end shows what was read and says
why in one line; what the reader skipped is counted on the status line and listed
on the notice line. Textual and rich only; never imports torch.
"""

from __future__ import annotations

import time
from typing import Iterable

from rich.text import Text
from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from schedtui.safe_text import visible
from schedtui.ui.base import CHART_KEYS, RunApp
from schedtui.ui.review import ReviewView
from schedtui.ui.screens import HelpScreen
from schedtui.ui.status import StatusBar, clock, fit

SPEEDS = (1, 10, 100)
FOLLOW_PERIOD_S = 0.5
KEYS = [
    ("left/right", "one step back / forward"),
    ("pgup/pgdn", "one epoch back / forward"),
    ("home/end", "the start / the end of the run"),
    ("n / N", "next / previous event (edit, pause, checkpoint, warning...)"),
    ("space", "play / pause from the cursor"),
    ("+ / -", "faster / slower: 1x, 10x, 100x"),
    ("t", "in the run's own time, or compressed (an epoch a second)"),
    ("up/down", "select a knob (scroll the event list when it has focus)"),
    ("?", "this help"),
    ("q", "quit"),
]


class ReviewBar(StatusBar):
    """The status lines of a replay: the run, REVIEW, the cursor, playback; loading, problems, what is here."""

    def text_lines(self) -> list[Text]:
        app, v = self.app, self.view
        width = max(self.size.width, 1)
        st = v.state
        total = v.last_step
        ep = f"{min(st.epoch + 1, st.epochs) if total else 0}/{st.epochs}"
        row1 = [(f"{visible(st.preset)} ", "bold", 0), (f"{visible(st.device)} ", "", 2), (" REVIEW ", "reverse bold cyan", 0),
                (f"  step {v.cursor}/{total}  ep {ep}  {clock(st.elapsed_s)}", "", 0),
                (f"  {'▶' if app.playing else '■'} {SPEEDS[app.speed]}x {'real' if app.real_time else 'fast'}", "", 1)]
        if app.follow:
            row1.append(("  run ended" if app.ended else "  following", "grey62" if app.ended else "green", 0))
        row2 = []
        if app.load_error:
            row2.append((f"could not read it all: {app.load_error}  ", "bold red", 0))
        elif app.loading is not None:
            row2.append((f"loading {app.loading:.0%}  ", "bold", 0))
        skipped = len(v.timeline.warnings) + v.timeline.dropped_warnings
        if skipped:
            row2.append((f"{skipped} log problem{'s' if skipped != 1 else ''} skipped  ", "yellow", 0))
        if v.at_cursor:
            row2.append(("here: " + ", ".join(sorted({visible(ev["type"]) for ev in v.at_cursor})), "bold yellow", 1))
        return [fit(row1, width), fit(row2, width)]


class ReplayApp(RunApp):
    STATUS_BAR = ReviewBar
    BINDINGS = [
        Binding("left", "move(-1)", "Step", show=False, priority=True),
        Binding("right", "move(1)", "Step", priority=True, key_display="←/→"),
        Binding("pageup", "epoch(-1)", "Epoch", show=False, priority=True),
        Binding("pagedown", "epoch(1)", "Epoch", show=False, priority=True, key_display="pg"),
        Binding("home", "jump('start')", "Start", show=False, priority=True),
        Binding("end", "jump('end')", "End", show=False, priority=True),
        Binding("n", "event(1)", "Event"),
        Binding("N", "event(-1)", "Prev event", show=False),
        Binding("space", "play", "Play"),
        Binding("plus,equals_sign", "speed(1)", "Speed", key_display="+/-"),
        Binding("minus", "speed(-1)", "Slower", show=False),
        Binding("t", "time_mode", "Time", show=False),
        Binding("question_mark", "help", "Keys", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, timeline, follow: bool = False, refresh_hz: float = 10.0, start: int | None = None):
        super().__init__(ReviewView(timeline), refresh_hz)
        self.timeline = timeline
        self.follow = follow
        self.playing = False
        self.speed = 0
        self.real_time = False
        self.loading: float | None = 0.0
        self.load_error: str | None = None
        self._start = start
        self._pos = 0.0  # the cursor as a float while playing
        self._last_tick = time.monotonic()
        self._reading = False
        self._warned = 0
        self._previous_end = 0
        self._t: float | None = None  # run time at the cursor while playing in real time

    @property
    def ended(self) -> bool:
        """The log has its run's end event: nothing more will be written (a resumed run's end counts
        when no resume came after it)."""
        with self.timeline.lock:
            last = [ev.get("type") for ev in self.timeline.events[-3:]]
        return "end" in last and "resume" not in last[last.index("end"):]

    def mounted(self) -> None:
        self.sub_title = visible(self.timeline.path)
        self.notice.show("←/→ a step, pgup/pgdn an epoch, n/N the next/previous event, space plays · ? keys", "hint")
        self.view.set_cursor(0)
        self._show()
        self._read(first=True)
        self.set_interval(1.0 / self.refresh_hz, self.tick)
        if self.follow:
            self.set_interval(FOLLOW_PERIOD_S, self._read)

    # ---- reading the log ------------------------------------------------------------------------
    def _read(self, first: bool = False) -> None:
        if self._reading or (not first and self.ended) or self.load_error:
            return  # an ended run writes nothing more; a log that failed once is not read again
        self._reading = True
        self.run_worker(lambda: self._load(first), thread=True, group="load", exit_on_error=False)

    def _load(self, first: bool) -> None:
        def progress(frac: float) -> None:
            self.loading = frac

        error = None
        try:
            new = self.timeline.load(final=not self.follow, progress=progress if first else None)
        except Exception as e:  # shown in one line, with what was read before it
            new, error = True, " ".join(visible(f"{type(e).__name__}: {e}").split())
        finally:
            self._reading = False
        if first or new:
            self.call_from_thread(self._loaded, first, error)

    def _loaded(self, first: bool, error: str | None = None) -> None:
        self.loading = None
        if error:
            self.load_error = error
            self.notify(f"could not read the whole log: {error}; showing the {self.view.last_step} steps read before it",
                        severity="error")
        if first:  # open at the end, where the whole run is in view, unless told otherwise
            self._goto(self.view.last_step if self._start is None else self._start)
        elif self.view.cursor >= self._previous_end and not self.playing:  # following the end, like tail -f
            self._goto(self.view.last_step)
        else:
            self._goto(self._pos)
        self._previous_end = self.view.last_step
        warnings = self.timeline.warnings
        if len(warnings) > self._warned:
            new = warnings[self._warned:]
            self._warned = len(warnings)
            more = f" (and {len(new) - 2} more: schedtui replay without a terminal lists them)" if len(new) > 2 else ""
            self.notify("skipped in the log: " + "; ".join(new[:2]) + more, severity="warning")

    # ---- the cursor -----------------------------------------------------------------------------
    def _goto(self, step: float, t: float | None = None) -> None:
        self._t = t
        self._pos = max(0.0, min(float(step), float(self.view.last_step)))
        self.view.set_cursor(int(self._pos))
        self._show()

    def _show(self) -> None:
        self.redraw()

    def tick(self) -> None:
        now = time.monotonic()
        dt, self._last_tick = now - self._last_tick, now
        if self.loading is not None:
            self.status_bar.update_lines()
        if not self.playing:
            return
        speed = SPEEDS[self.speed]
        t = None
        if self.real_time:
            t = (self.view.time_at(int(self._pos)) if self._t is None else self._t) + dt * speed
            pos = self.view.step_at(t)
        else:
            pos = self._pos + dt * speed * (self.view.state.steps_per_epoch or 1)
        if pos >= self.view.last_step and not self.follow:
            self.playing = False
        self._goto(pos, t)

    # ---- actions ----------------------------------------------------------------------------------
    def action_move(self, steps: int) -> None:
        self.playing = False
        self._goto(self.view.cursor + steps)

    def action_epoch(self, direction: int) -> None:
        self.playing = False
        self._goto(self.view.cursor + direction * (self.view.state.steps_per_epoch or 1))

    def action_jump(self, where: str) -> None:
        self.playing = False
        self._goto(0 if where == "start" else self.view.last_step)

    def action_event(self, direction: int) -> None:
        self.playing = False
        step = self.view.next_event(self.view.cursor, forward=direction > 0)
        if step is None:
            self.notice.show("no later event" if direction > 0 else "no earlier event", "hint")
            return
        self._goto(step)

    def action_play(self) -> None:
        if not self.playing and self.view.cursor >= self.view.last_step and not self.follow:
            self._goto(0)  # at the end: play from the start
        self.playing = not self.playing
        self._last_tick = time.monotonic()
        self.status_bar.update_lines()

    def action_speed(self, direction: int) -> None:
        self.speed = max(0, min(len(SPEEDS) - 1, self.speed + direction))
        self.status_bar.update_lines()

    def action_time_mode(self) -> None:
        self.real_time = not self.real_time
        self.notice.show("playing in the run's own time" if self.real_time else "playing compressed: one epoch a second at 1x",
                         "hint")
        self.status_bar.update_lines()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(KEYS + CHART_KEYS))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand("Play / pause", "Play the run from the cursor, or stop playing", self.action_play)
        yield SystemCommand("Next event", "Move the cursor to the next edit, pause, checkpoint or warning", lambda: self.action_event(1))
        yield SystemCommand("Previous event", "Move the cursor to the previous event", lambda: self.action_event(-1))
        yield SystemCommand("Start of the run", "Move the cursor to step 0", lambda: self.action_jump("start"))
        yield SystemCommand("End of the run", "Move the cursor to the last step", lambda: self.action_jump("end"))
        yield SystemCommand("Real time / compressed", "Play in the run's own time, or one epoch a second", self.action_time_mode)
        yield SystemCommand("Zoom a chart", "One chart in the whole panel ([ and ] the others), or all of them", self.action_zoom)
        yield SystemCommand("Chart window", "The whole run, or the last N steps", self.action_window)
        yield SystemCommand("Log scale", "Log or linear y-axis for the charts", self.action_log_scale)
        yield SystemCommand("Filter events", "All events, or only edits, pauses, SWA, checkpoints, problems", self.action_filter)
        yield SystemCommand("Keys", "Every key replay answers to", self.action_help)
        yield from super().get_system_commands(screen)
