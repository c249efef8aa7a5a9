"""What the live screen shows, folded from a run's events: charts on one step axis, marks, listed events, knob rows.

`RunView.apply(event)` is called for each event a source delivers (and, for a
run with recorded history, `add_bucket` for the downsampled steps of its log:
see `ui.history`); the app reads the view once per frame. Replay's `ReviewView`
has the same interface (`state`, `header`, `x_end`, `charts()`, `marks`,
`entries`, `eval_line()`, `knob_rows()`), computed at a cursor.

- charts: the training loss, validation loss and accuracy (the raw model's and
  the averaged models', overlaid), then every knob that is scheduled, edited or
  moving; all share the x-axis of steps.
- marks: (step, style) of edits (at the first update they apply to), pauses,
  resumes and SWA starts and stops, drawn in the same column of every chart.
- entries: (step, category, style, text) of the events worth a line (not the
  routine ones: `text.routine`), bounded.
Every string from the run is made visible (`safe_text`). Chart memory is bounded
(`StepSeries`). No torch, no textual.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from schedtui.events.state import RunState
from schedtui.safe_text import visible
from schedtui.ui.series import StepSeries
from schedtui.ui.text import category, eval_line_of, event_line, fmt, full  # noqa: F401  (event_line, fmt: re-exported)

MODELS = ("raw", "swa", "ema")
MODEL_STYLE = {"swa": "bright_cyan", "ema": "bright_magenta"}
METRIC_STYLE = {"loss": "red", "acc": "green"}
KNOB_STYLE = "dodger_blue1"
MARK_STYLE = {"edit": "bold yellow", "pause": "grey50", "resume": "grey50", "resumed": "bold green", "swa": "bold cyan"}
MAX_ENTRIES = 5000
MAX_MARKS = 2000


@dataclass
class Chart:
    key: str  # stable: "loss", "val loss", "val acc", "knob:<name>"
    title: str  # shown (made visible)
    kind: str  # "loss" (smoothable), "val" (overlaid models), "knob" (never smoothed)
    series: list  # [(label, style, StepSeries | Curve)], drawn in order (later on top)
    percent: bool = False  # values shown as percentages


class KnobRow(NamedTuple):
    knob: str  # the knob's name as the run knows it (commands use it)
    value: str
    schedule: str
    edit: str
    next: str
    name: str  # as shown
    detail: str  # the full line for the selected knob


def mark_of(ev: dict) -> tuple[int, str] | None:
    """(step, style) of an event that marks the charts, or None."""
    t, step = ev.get("type"), ev.get("step")
    if not isinstance(step, int):
        return None
    if t == "edit":
        return step + 1, MARK_STYLE["edit"]  # an edit at step k applies to update k+1 on
    if t == "pause":
        return step, MARK_STYLE["pause"]
    if t == "resume":
        return step, MARK_STYLE["resumed" if "checkpoint" in ev else "resume"]
    if t == "swa" and ev.get("op") in ("start", "stop"):
        return step, MARK_STYLE["swa"]
    return None


def knob_names(header: dict | None) -> dict:
    knobs = (header or {}).get("knobs")
    return knobs if isinstance(knobs, dict) else {}


class RunView:
    grows = True  # a live run: the charts' x-axis runs on past the last step (see `plot.nice_end`)

    def __init__(self, capacity: int = 1024):
        self.capacity = capacity
        self.state: RunState | None = None
        self.header: dict | None = None
        self.series: dict[str, StepSeries] = {"loss": StepSeries(capacity)}
        self.knob_order: list[str] = []
        self.scheduled: set[str] = set()
        self.marks: deque = deque(maxlen=MAX_MARKS)
        self.entries: deque = deque(maxlen=MAX_ENTRIES)
        self.entries_added = 0  # ever: the event list tells new entries by it
        self.knob_info: dict = {}  # knob -> {"schedule", "override", "next", ...} from the engine's describe
        self.stale_info = True  # an edit or epoch happened: ask the engine to describe the knobs again
        self.last_edit: dict | None = None
        self._const: dict = {}  # knob -> (the first step, its value) while it has not moved
        self.x_end = 0  # the last step: the charts' x-axis ends here

    # ---- folding events ------------------------------------------------------------------------
    def apply(self, ev: dict, chart: bool = True) -> None:
        t = ev.get("type")
        if t == "header":
            self._header(ev)
            return
        if self.state is None:
            return
        step = ev.get("step") if isinstance(ev.get("step"), int) else self.state.step
        self.state.apply(ev)  # (a resume from a checkpoint rolls the state back to its step: the fold's rule)
        if t == "resume" and "checkpoint" in ev:  # the steps go on from the checkpoint's step
            self.x_end = step
        if t == "step":
            if chart:
                self._step(step, ev)
            return
        if t == "eval":
            model = ev.get("model", "raw")
            if model in MODELS:
                for metric in ("loss", "acc"):
                    self._series(f"val {metric}/{model}").add(step, ev.get(metric))
        elif t == "edit":
            knob = ev.get("knob")
            if isinstance(knob, str):
                self.scheduled.add(knob)
                self._knob(knob)
            self.stale_info = True
            self.last_edit = ev
        elif t == "epoch":
            self.stale_info = True
        mark = mark_of(ev)
        if mark is not None:
            self.marks.append(mark)
        self._entry(ev, step)

    def apply_all(self, events: list[dict]) -> None:
        """`apply` each event; a run of steps in one go (the state takes only the last: it keeps no history)."""
        steps: list[dict] = []
        for ev in events:
            if ev.get("type") == "step" and self.state is not None and isinstance(ev.get("step"), int):
                steps.append(ev)
                continue
            if steps:
                self._steps(steps)
                steps = []
            self.apply(ev)
        if steps:
            self._steps(steps)

    def _steps(self, evs: list[dict]) -> None:
        """A run of step events: the loss and each moving knob's values taken in one go per series."""
        self.state.apply(evs[-1])
        knobs = [ev.get("knobs") for ev in evs]
        if not all(isinstance(k, dict) for k in knobs) or any(k.keys() != knobs[0].keys() for k in knobs):
            for ev in evs:  # knobs missing or changing from step to step: one at a time
                self._step(ev["step"], ev)
            return
        steps = [ev["step"] for ev in evs]
        self.x_end = steps[-1]
        self.series["loss"].extend(steps, [ev.get("loss") for ev in evs])
        for k in knobs[0]:
            values = [kv[k] for kv in knobs]
            if k not in self.scheduled:
                held = self._const.get(k)
                if held is None:
                    self._const[k] = held = (steps[0], values[0])
                    self._knob(k).last = values[0] if isinstance(values[0], (int, float)) else None
                if values.count(held[1]) == len(values):
                    self.series[k].last = values[-1]
                    continue
                for st, v in zip(steps, values):  # it starts moving in this run
                    self._step_knob(k, st, v)
                continue
            self.series[k].extend(steps, values)

    def _header(self, ev: dict) -> None:
        self.header = ev
        self.state = RunState.from_header(ev)
        descr = knob_names(ev)
        for k, d in descr.items():
            self._knob(k)
            if not (isinstance(d, str) and d.startswith("constant")):
                self.scheduled.add(k)

    def _step(self, step: int, ev: dict) -> None:
        self.x_end = step
        self.series["loss"].add(step, ev.get("loss"))
        knobs = ev.get("knobs")
        if not isinstance(knobs, dict):
            return
        for k, v in knobs.items():
            self._step_knob(k, step, v)

    def _step_knob(self, k, step: int, v) -> None:
        if k in self.scheduled:
            (self.series.get(k) or self._knob(k)).add(step, v)
            return
        # a knob that has not moved: no chart, no points (half the knobs of a run, every step); its value
        # and the first step it had it are enough to draw its past if it starts moving
        held = self._const.get(k)
        if held is None:
            self._const[k] = (step, v)
            self._knob(k).last = v if isinstance(v, (int, float)) else None
        elif v != held[1]:
            self.scheduled.add(k)
            s = self.series.get(k) or self._knob(k)
            s.add(held[0], held[1])
            if step - 1 > held[0]:
                s.add(step - 1, held[1])
            s.add(step, v)
        else:
            self.series[k].last = v

    def add_bucket(self, step: int, width: int, loss, knobs: dict) -> None:
        """Steps step..step+width-1 of a recorded history, as one point: the mean loss, the knobs' values."""
        self.x_end = max(self.x_end, step + width - 1)
        self.series["loss"].add(step + (width - 1) / 2, loss, weight=width)
        for k, v in (knobs if isinstance(knobs, dict) else {}).items():
            s = self.series.get(k) or self._knob(k)
            if s.last is not None and v != s.last:
                self.scheduled.add(k)
            s.add(step, v, weight=width)
        self._const.clear()  # the history has every knob's points

    def _knob(self, k) -> StepSeries:
        if k not in self.series:
            self.series[k] = StepSeries(self.capacity)
            self.knob_order.append(k)
        return self.series[k]

    def _series(self, key: str) -> StepSeries:
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = StepSeries(self.capacity)
        return s

    def _entry(self, ev: dict, step: int) -> None:
        cat = category(ev)
        if cat is None:
            return
        line = event_line(ev)
        if line is not None:
            self.entries.append((step, cat, line[0], line[1]))
            self.entries_added += 1

    # ---- what the widgets read -------------------------------------------------------------------
    def charts(self) -> list[Chart]:
        out = [Chart("loss", "loss", "loss", [("train", METRIC_STYLE["loss"], self.series["loss"])])]
        for metric in ("loss", "acc"):
            got = [(m, METRIC_STYLE[metric] if m == "raw" else MODEL_STYLE[m], self.series[f"val {metric}/{m}"])
                   for m in MODELS if f"val {metric}/{m}" in self.series]
            out.append(Chart(f"val {metric}", f"val {metric}", "val", got, percent=metric == "acc"))
        for k in self.knob_order:
            if k in self.scheduled:
                out.append(Chart(f"knob:{k}", visible(k), "knob", [(visible(k), KNOB_STYLE, self.series[k])]))
        return out

    def eval_line(self) -> str | None:
        return eval_line_of(self.state.evals) if self.state is not None else None

    def knob_rows(self) -> list[KnobRow]:
        state = self.state
        header_knobs = knob_names(self.header)
        rows = []
        for k in self.knob_order:
            info = self.knob_info.get(k) or {}
            value = state.knobs.get(k) if state else None
            if value is None:
                value = info.get("value")
            sched = visible(info.get("schedule") or header_knobs.get(k, ""))
            edit = visible(info.get("override") or "")
            rows.append(knob_row(k, value, sched, edit, self._next(info), info.get("bounds")))
        return rows

    def _next(self, info: dict) -> str:
        nxt, state = info.get("next"), self.state
        if state is not None and state.end is not None:
            return "-"  # the run is over: whatever was described as next will not come
        if not isinstance(nxt, dict):
            return "-" if info else ""
        if nxt.get("every_step"):
            return "every step"
        if state is not None and isinstance(nxt.get("step"), int) and nxt["step"] <= state.step:
            return "…"  # passed since it was described: asked again at the next epoch or edit
        return f"{fmt(nxt.get('value'))} @{nxt.get('step')}"


def knob_row(k, value, sched: str, edit: str, nxt: str, bounds=None) -> KnobRow:
    name = visible(k)
    parts = [f"{name} = {full(value)}", sched or "-", f"edit: {edit}" if edit else "no edit", f"next: {nxt or '-'}"]
    if bounds:
        parts.append(f"range {visible(bounds)}")
    return KnobRow(k, fmt(value), sched, edit, nxt, name, "  ·  ".join(parts))
