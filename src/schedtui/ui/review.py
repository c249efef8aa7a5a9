"""What the replay screen shows: a recorded run as it stood at a timeline cursor.

`ReviewView(timeline)` has the interface the main screen's widgets read (`state`,
`charts`, `chart_names()`, `knob_rows()`, event lines), computed for one step,
`cursor`: charts end there (downsampled: the timeline's buckets), the knob table
shows the values step `cursor` used and the edit in force then, the event list
ends with the last event at or before it. `events_of_note` lists the steps that
`n`/`N` jump between. Pure Python (no torch, no textual): tests drive it directly.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

from schedtui.events.state import RunState
from schedtui.ui.view import AVERAGED, FIXED_CHARTS, event_line, fmt

NOTABLE = ("edit", "pause", "resume", "swa", "checkpoint", "warning", "early_stop", "error", "end")


def notable(ev: dict) -> bool:
    """An event that n/N stop at: not SWA's routine averaging updates."""
    return ev.get("type") in NOTABLE and not (ev.get("type") == "swa" and ev.get("op") == "update")
MAX_LINES = 500


@dataclass
class Points:
    """One chart at the cursor: what `Charts` reads from a live `Series`."""

    values: list = field(default_factory=list)
    marks: list = field(default_factory=list)
    last: float | None = None

    def points(self) -> tuple[list, list]:
        return self.values, self.marks


def describe_edit(ev: dict, base: str) -> str:
    """The schedule column for a knob under an edit, like the live app's (`set 0.3 @1200`)."""
    op, at = ev["op"], f"@{ev['step']}"
    if op == "set":
        return f"set {fmt(ev.get('value'))} {at}"
    if op == "scale":
        return f"x{fmt(ev.get('factor'))} {base} {at}"
    if op == "schedule":
        spec = ev.get("spec") or {}
        args = " ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in spec.items() if k not in ("kind", "unit"))
        return f"{spec.get('kind', 'schedule')} {args} {at}".replace("  ", " ")
    return base


class ReviewView:
    def __init__(self, timeline):
        self.timeline = timeline
        self.header = timeline.header
        self.knob_info: dict = {}
        self.stale_info = False
        self.cursor = 0
        self.state = RunState.from_header(self.header)
        self.charts: dict[str, Points] = {}
        self.knob_order: list[str] = list(self.header.get("knobs", {}))
        self.scheduled: set[str] = set()
        self.lines: deque = deque(maxlen=MAX_LINES)
        self.at_cursor: list[dict] = []  # the notable events at the cursor's step
        self._rows: list[tuple] = []

    @property
    def last_step(self) -> int:
        return self.timeline.last_step

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
        self._fold(events, here)
        self._charts(events, buckets, bucket, here)
        self._table(events, here)
        self.lines.clear()
        for ev in events[-MAX_LINES * 2:]:
            line = event_line(ev)
            if line is not None:
                self.lines.append(line)
        self.at_cursor = [ev for ev in events if ev.get("step") == step and notable(ev)]

    def _fold(self, events: list[dict], here: dict | None) -> None:
        st = RunState.from_header(self.header)
        for ev in events:
            st.apply(ev)
        if here is not None:
            st.apply(here)
        self.state = st

    def _charts(self, events, buckets, bucket: int, here: dict | None) -> None:
        edits = [ev for ev in events if ev.get("type") == "edit"]

        def marks(knob: str | None) -> list[bool]:
            """Buckets holding an update that an edit (of `knob`, or of any knob) applied to first."""
            steps = sorted(ev["step"] + 1 for ev in edits if knob is None or ev["knob"] == knob)
            out = []
            for s0, *_ in buckets:
                i = bisect.bisect_left(steps, s0)
                out.append(i < len(steps) and steps[i] < s0 + bucket)
            return out

        def points(values: list, marked: list[bool], last) -> Points:
            return Points([v for v in values if v is not None], [m for v, m in zip(values, marked) if v is not None], last)

        charts = {"loss": points([b[1] for b in buckets], marks(None), here.get("loss") if here else None)}
        for model in ("raw", *AVERAGED):
            evals = [ev for ev in events if ev.get("type") == "eval" and ev.get("model", "raw") == model]
            if model != "raw" and not evals:
                continue
            prefix = "" if model == "raw" else f"{model} "
            for name, key in ((f"{prefix}val loss", "loss"), (f"{prefix}val acc", "acc")):
                vals = [ev[key] for ev in evals if isinstance(ev.get(key), (int, float))]
                charts[name] = Points(vals, [False] * len(vals), vals[-1] if vals else None)
        knobs_here = (here or {}).get("knobs", {})
        for k in list(knobs_here) + [k for b in buckets[:1] for k in b[2]]:
            if k not in self.knob_order:
                self.knob_order.append(k)
        edited = {ev["knob"] for ev in edits}
        for k in self.knob_order:
            pts = charts[k] = points([b[2].get(k) for b in buckets], marks(k) if k in edited else [False] * len(buckets),
                                     knobs_here.get(k))
            if k in edited or (pts.values and min(pts.values) != max(pts.values)):
                self.scheduled.add(k)
        self.charts = charts

    def _table(self, events: list[dict], here: dict | None) -> None:
        described = self.header.get("knobs", {})
        active: dict[str, dict] = {}
        for ev in events:
            if ev.get("type") == "edit":
                if ev["op"] == "revert":
                    active.pop(ev["knob"], None)
                else:
                    active[ev["knob"]] = ev
        later: dict[str, dict] = {}
        for ev in self.timeline.events:
            if ev.get("type") == "edit" and ev["step"] > self.cursor and ev["knob"] not in later:
                later[ev["knob"]] = ev
        knobs = (here or {}).get("knobs", {})
        rows = []
        for k in self.knob_order:
            base = described.get(k, "")
            ev = active.get(k)
            sched = describe_edit(ev, base) if ev else base
            nxt = later.get(k)
            rows.append((k, fmt(knobs.get(k)), sched, ev["op"] if ev else "", f"{nxt['op']} @{nxt['step']}" if nxt else "-"))
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

    def chart_names(self) -> list[str]:
        averaged = [f"{m} {c}" for m in AVERAGED for c in ("val loss", "val acc") if f"{m} {c}" in self.charts]
        return list(FIXED_CHARTS) + averaged + [k for k in self.knob_order if k in self.scheduled]

    def knob_rows(self) -> list[tuple[str, str, str, str, str]]:
        """(knob, value at the cursor, schedule in force, edit op, the knob's next logged edit)."""
        return self._rows
