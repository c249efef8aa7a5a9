"""What the screen shows, folded from events: chart series, event-list lines, knob rows.

`RunView.apply(event)` is called for each event a source delivers; the app reads
the view once per frame (a few times a second). Chart memory is bounded (`Series`). No
torch, no textual (rich is not needed either).
"""

from __future__ import annotations

from schedtui.events.state import RunState
from schedtui.ui.series import Series

FIXED_CHARTS = ("loss", "val loss", "val acc")
AVERAGED = ("swa", "ema")  # averaged models get their own validation charts, after the raw model's


def fmt(v, spec: str = ".4g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return format(v, ".2e" if spec in (".3g", ".4g") else ".3e")
    return format(v, spec)


def event_line(ev: dict) -> tuple[str, str] | None:
    """(style, text) for the event list, or None for events it does not list (steps, epochs)."""
    t, step = ev.get("type"), ev.get("step")
    where = f"{step:>6} "
    if t == "edit":
        op = ev["op"]
        how = {"set": "set", "revert": "revert"}.get(op)
        if op == "scale":
            how = f"x{fmt(ev.get('factor'), '.3g')}"
        elif op == "schedule":
            how = str(ev.get("spec", {}).get("kind", "schedule"))
        return "cyan", f"{where}{ev['knob']} {fmt(ev.get('old'), '.3g')}→{fmt(ev.get('new'), '.3g')} {how}"
    if t == "pause":
        return "yellow", f"{where}paused ({ev.get('reason', 'user')})"
    if t == "resume":
        if "checkpoint" in ev:
            return "bold green", f"{where}resumed from {str(ev['checkpoint']).rsplit('/', 1)[-1]}"
        return "green", f"{where}resumed"
    if t == "eval":
        why = " (manual)" if ev.get("reason") == "manual" else ""
        model = ev.get("model", "raw")
        which = "" if model == "raw" else f" {model}"
        acc = ev.get("acc")
        acc_s = f" acc {fmt(acc, '.1%')}" if isinstance(acc, (int, float)) and acc == acc else ""  # none for a regression
        return "" if model == "raw" else "cyan", f"{where}val{which} {fmt(ev.get('loss'), '.3g')}{acc_s}{why}"
    if t == "swa":
        op = ev.get("op")
        if op == "start":
            unit = ev.get("update_unit", "epoch")
            return "bold cyan", f"{where}SWA started (averaging every {ev.get('update_every', 1)} {unit})"
        if op == "stop":
            return "cyan", f"{where}SWA stopped ({ev.get('n_averaged')} averaged)"
        if op == "update_bn":
            return "cyan", f"{where}SWA update_bn"
        return None  # updates: too many to list; the chart shows them
    if t == "early_stop":
        restored = ", best weights restored" if ev.get("restored") else ""
        return "bold magenta", (f"{where}early stop: {ev.get('metric')} no better for {ev.get('evaluations_without_improvement')}"
                                f" evals; best {fmt(ev.get('best'), '.4g')} @{ev.get('best_step')}{restored}")
    if t == "checkpoint":
        return "magenta", f"{where}checkpoint {ev.get('path')}"
    if t == "warning":
        return "bold yellow", f"{where}warning: {ev.get('message')}"
    if t == "error":
        return "bold red", f"{where}error: {ev.get('message')} (traceback: {ev.get('traceback_file')})"
    if t == "end":
        why = f" ({ev['reason']})" if ev.get("reason") else ""
        return "bold", f"{where}run {ev.get('status')}{why}"
    return None


class RunView:
    def __init__(self, capacity: int = 1024):
        self.capacity = capacity
        self.state: RunState | None = None
        self.header: dict | None = None
        self.charts: dict[str, Series] = {name: Series(capacity) for name in FIXED_CHARTS}
        self.knob_order: list[str] = []
        self.scheduled: set[str] = set()
        self.new_lines: list[tuple[str, str]] = []
        self.knob_info: dict = {}  # knob -> {"schedule", "override", "next", ...} from the engine's describe
        self.stale_info = True  # an edit or epoch happened: ask the engine to describe the knobs again
        self.last_edit: dict | None = None

    def apply(self, ev: dict) -> None:
        t = ev.get("type")
        if t == "header":
            self.header = ev
            self.state = RunState.from_header(ev)
            descr = ev.get("knobs", {})
            self.knob_order = list(descr)
            self.scheduled = {k for k, d in descr.items() if not d.startswith("constant")}
            for k in self.knob_order:
                self.charts.setdefault(k, Series(self.capacity))
            return
        if self.state is None:
            return
        self.state.apply(ev)
        step = ev.get("step", 0)
        if t == "step":
            self.charts["loss"].append(step, ev.get("loss"))
            for k, v in ev.get("knobs", {}).items():
                series = self.charts.get(k)
                if series is None:
                    series = self.charts[k] = Series(self.capacity)
                    self.knob_order.append(k)
                if series.last is not None and v != series.last:
                    self.scheduled.add(k)
                series.append(step, v)
        elif t == "eval":
            model = ev.get("model", "raw")
            prefix = "" if model == "raw" else f"{model} "
            for name, key in ((f"{prefix}val loss", "loss"), (f"{prefix}val acc", "acc")):
                self.charts.setdefault(name, Series(self.capacity)).append(step, ev.get(key))
        elif t == "swa" and ev.get("op") in ("start", "stop"):
            self.charts["loss"].mark_next()
        elif t == "edit":
            self.scheduled.add(ev["knob"])
            self.charts.setdefault(ev["knob"], Series(self.capacity)).mark_next()
            self.charts["loss"].mark_next()
            self.stale_info = True
            self.last_edit = ev
        elif t == "epoch":
            self.stale_info = True
        line = event_line(ev)
        if line is not None:
            self.new_lines.append(line)

    def take_lines(self) -> list[tuple[str, str]]:
        out, self.new_lines = self.new_lines, []
        return out

    def chart_names(self) -> list[str]:
        """Loss and validation charts (the averaged models' too, once evaluated), then one per scheduled
        (or edited, or moving) knob."""
        averaged = [f"{m} {c}" for m in AVERAGED for c in ("val loss", "val acc") if f"{m} {c}" in self.charts]
        return list(FIXED_CHARTS) + averaged + [k for k in self.knob_order if k in self.scheduled]

    def knob_rows(self) -> list[tuple[str, str, str, str, str]]:
        """(knob, value, schedule, edit, next change) for the knob table."""
        state = self.state
        rows = []
        for k in self.knob_order:
            info = self.knob_info.get(k, {})
            value = state.knobs.get(k) if state else None
            if value is None:
                value = info.get("value")
            sched = info.get("schedule") or (self.header or {}).get("knobs", {}).get(k, "")
            edit = info.get("override") or ""
            nxt = info.get("next")
            if state is not None and state.end is not None:
                nxt_s = "-"  # the run is over: whatever was described as next will not come
            elif nxt is None:
                nxt_s = "-" if info else ""
            elif nxt.get("every_step"):
                nxt_s = "every step"
            else:
                nxt_s = f"{fmt(nxt['value'])} @{nxt['step']}"
            rows.append((k, fmt(value), sched, edit, nxt_s))
        return rows
