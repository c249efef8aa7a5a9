"""What the replay screen shows: a recorded run as it stood at a timeline cursor.

`ReviewView(timeline)` has the interface the main screen's widgets read (`state`,
`header`, `x_end`, `charts()`, `marks`, `entries`, `eval_line()`, `knob_rows()`;
see `ui.view`), computed for one step, `cursor`: charts end there (downsampled:
the timeline's buckets), the knob table shows the values step `cursor` used and
the edit in force then, the event list ends with the last event at or before it.
`events_of_note` lists the steps that `n`/`N` jump between. Every string from the
log is made visible. Pure Python (no torch, no textual): tests drive it directly.
"""

from __future__ import annotations

import bisect

from schedtui.events.state import RunState
from schedtui.safe_text import visible
from schedtui.ui.series import Curve
from schedtui.ui.text import category, eval_line_of, event_line, fmt
from schedtui.ui.view import KNOB_STYLE, METRIC_STYLE, MODEL_STYLE, MODELS, Chart, knob_names, knob_row, mark_of

NOTABLE = ("edit", "pause", "resume", "swa", "checkpoint", "warning", "early_stop", "error", "end")
MAX_LINES = 1000


def notable(ev: dict) -> bool:
    """An event that n/N stop at: not SWA's routine averaging updates."""
    return ev.get("type") in NOTABLE and not (ev.get("type") == "swa" and ev.get("op") == "update")


def describe_edit(ev: dict, base: str) -> str:
    """The schedule column for a knob under an edit, like the live app's (`set 0.3 @1200`)."""
    op, at = ev.get("op"), f"@{ev.get('step')}"
    if op == "set":
        return visible(f"set {fmt(ev.get('value'))} {at}")
    if op == "scale":
        return visible(f"x{fmt(ev.get('factor'))} {base} {at}")
    if op == "schedule":
        spec = ev.get("spec") if isinstance(ev.get("spec"), dict) else {}
        args = " ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in spec.items() if k not in ("kind", "unit"))
        return visible(f"{spec.get('kind', 'schedule')} {args} {at}".replace("  ", " "))
    return base


class ReviewView:
    def __init__(self, timeline):
        self.timeline = timeline
        self.header = timeline.header
        self.knob_info: dict = {}
        self.stale_info = False
        self.cursor = 0
        self.state = RunState.from_header(self.header)
        self.knob_order: list[str] = list(knob_names(self.header))
        self.scheduled: set[str] = {k for k, d in knob_names(self.header).items()  # charted as live: what a schedule drives
                                    if not (isinstance(d, str) and d.startswith("constant"))}
        self.marks: list = []
        self.entries: list = []
        self.entries_added = 0  # counts the rebuilds: the event list wraps its lines again
        self.at_cursor: list[dict] = []  # the notable events at the cursor's step
        self._charts: list[Chart] = []
        self._rows: list = []
        self._all_entries: list = []
        self._indexed = 0

    @property
    def last_step(self) -> int:
        return self.timeline.last_step

    @property
    def x_end(self) -> int:
        return self.cursor

    def events_of_note(self) -> list[int]:
        """The steps that have a notable event (edit, pause, checkpoint, warning, ...), ascending."""
        return sorted({ev["step"] for ev in self.timeline.events if notable(ev)})

    def next_event(self, step: int, forward: bool = True) -> int | None:
        steps = self.events_of_note()
        if forward:
            i = bisect.bisect_right(steps, step)
            return steps[i] if i < len(steps) else None
        i = bisect.bisect_left(steps, step) - 1
        return steps[i] if i >= 0 else None

    def set_cursor(self, step: int) -> None:
        """Show the run as it stood after update `step` (0: before the first)."""
        tl = self.timeline
        with tl.lock:
            self.cursor = step = max(0, min(step, tl.last_step))
            events = [ev for ev in tl.events if ev.get("step", 0) <= step]
            buckets = tl.buckets(step) if step > 0 else []
            bucket = tl.bucket
            here = tl.step_event(step) if step > 0 else None
        st = RunState.from_header(self.header)
        for ev in events:
            st.apply(ev)
        if here is not None:
            st.apply(here)
        self.state = st
        self._chart_data(events, buckets, bucket, here)
        self._table(events, here)
        self.marks = [m for m in map(mark_of, events) if m is not None and m[0] <= step]
        self.entries = [e for e in self._listed() if e[0] <= step][-MAX_LINES:]
        self.entries_added += 1
        self.at_cursor = [ev for ev in events if ev.get("step") == step and notable(ev)]

    def _listed(self) -> list:
        """Every event of the log that has a line in the event list, as (step, category, style, text); kept
        from call to call and extended as the log grows (routine events, most of a long log, have none)."""
        events = self.timeline.events
        for ev in events[self._indexed:]:
            cat, line = category(ev), event_line(ev)
            if cat is not None and line is not None:
                self._all_entries.append((ev["step"], cat, line[0], line[1]))
        self._indexed = len(events)
        return self._all_entries

    def _chart_data(self, events, buckets, bucket: int, here: dict | None) -> None:
        centre = (bucket - 1) / 2
        charts = [Chart("loss", "loss", "loss", [("train", METRIC_STYLE["loss"],
                                                  Curve([b[0] + centre for b in buckets], [b[1] for b in buckets],
                                                        here.get("loss") if here else None))])]
        for metric in ("loss", "acc"):
            series = []
            for model in MODELS:
                evals = [ev for ev in events if ev.get("type") == "eval" and ev.get("model", "raw") == model]
                if model != "raw" and not evals:
                    continue
                style = METRIC_STYLE[metric] if model == "raw" else MODEL_STYLE[model]
                series.append((model, style, Curve([ev["step"] for ev in evals], [ev.get(metric) for ev in evals])))
            charts.append(Chart(f"val {metric}", f"val {metric}", "val", series, percent=metric == "acc"))
        knobs_here = (here or {}).get("knobs") if isinstance((here or {}).get("knobs"), dict) else {}
        for k in list(knobs_here) + [k for b in buckets[:1] for k in b[2]]:
            if k not in self.knob_order:
                self.knob_order.append(k)
        edited = {ev.get("knob") for ev in events if ev.get("type") == "edit"}
        for k in self.knob_order:
            curve = Curve([b[0] for b in buckets], [b[2].get(k) for b in buckets], knobs_here.get(k))
            if k in edited or (curve.values and min(curve.values) != max(curve.values)):
                self.scheduled.add(k)
            if k in self.scheduled:
                charts.append(Chart(f"knob:{k}", visible(k), "knob", [(visible(k), KNOB_STYLE, curve)]))
        self._charts = charts

    def _table(self, events: list[dict], here: dict | None) -> None:
        described = knob_names(self.header)
        active: dict = {}
        for ev in events:
            if ev.get("type") == "edit":
                if ev.get("op") == "revert":
                    active.pop(ev.get("knob"), None)
                else:
                    active[ev.get("knob")] = ev
        later: dict = {}
        for ev in self.timeline.events:
            if ev.get("type") == "edit" and ev["step"] > self.cursor and ev.get("knob") not in later:
                later[ev.get("knob")] = ev
        knobs = (here or {}).get("knobs") if isinstance((here or {}).get("knobs"), dict) else {}
        rows = []
        for k in self.knob_order:
            base = visible(described.get(k, ""))
            ev = active.get(k)
            nxt = later.get(k)
            rows.append(knob_row(k, knobs.get(k), describe_edit(ev, base) if ev else base,
                                 visible(ev.get("op")) if ev else "",
                                 visible(f"{nxt.get('op')} @{nxt['step']}") if nxt else "-"))
        self._rows = rows

    def time_at(self, step: int) -> float:
        """Seconds into the run at `step` (interpolated between the buckets' first steps)."""
        pts = self._time_points()
        i = bisect.bisect_right([s for s, _ in pts], step) - 1
        if i < 0:
            return 0.0
        if i + 1 >= len(pts):
            return pts[i][1]
        (s0, t0), (s1, t1) = pts[i], pts[i + 1]
        return t0 + (t1 - t0) * (step - s0) / (s1 - s0)

    def step_at(self, t: float) -> float:
        """The (fractional) step the run had reached `t` seconds in: playback in real run time."""
        pts = self._time_points()
        i = bisect.bisect_right([tt for _, tt in pts], t) - 1
        if i < 0:
            return 0.0
        if i + 1 >= len(pts):
            return float(pts[i][0])
        (s0, t0), (s1, t1) = pts[i], pts[i + 1]
        return s0 + (s1 - s0) * (t - t0) / (t1 - t0) if t1 > t0 else float(s1)

    def _time_points(self) -> list[tuple[int, float]]:
        tl = self.timeline
        with tl.lock:
            pts = [(s, t) for s, _, _, t in tl.buckets(tl.last_step) if isinstance(t, (int, float))]
            if tl.last_step and (not pts or pts[-1][0] < tl.last_step):
                pts.append((tl.last_step, tl.last_time))
        return pts

    def charts(self) -> list[Chart]:
        return self._charts

    def chart_names(self) -> list[str]:
        return [c.title for c in self._charts]

    def eval_line(self) -> str | None:
        return eval_line_of(self.state.evals)

    def knob_rows(self) -> list:
        """KnobRow(knob, value at the cursor, schedule in force, edit op, the knob's next logged edit, ...)."""
        return self._rows
