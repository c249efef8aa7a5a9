"""Every knob's base schedule plus its active edit: the values for each optimizer update.

`KnobSchedules.values(step)` gives every knob's value for update step+1 (step =
updates completed). `edit(...)` applies one of set / scale / schedule / revert at a
step (DESIGN.md "Steps, epochs and edits") after checking that the knob stays in
its bounds for the rest of the run; a rejected edit changes nothing. A value
that cannot change for a while (a constant, a milestone not yet reached, a set
edit, a plateau between observations: the schedules' `hold`) is kept and handed
out again until then, so the training run does not recompute every knob every
step; any edit, observation or state load forgets what was kept. All state is
plain data (`state_dict` round-trips through JSON): the active edits, and every
validation metric observed with its step, which `load_state_dict` hands again to
metric-driven schedules (ReduceLROnPlateau) so that they end where they were.
Pure Python; no torch at import.
"""

from __future__ import annotations

import math

from schedtui.errors import UserError
from schedtui.schedule.bounds import Bounds
from schedtui.schedule.native import FOREVER, Follow
from schedtui.schedule.spec import build_schedule, describe_spec, spec_start
from schedtui.schedule.timing import Timing

EDIT_OPS = ("set", "scale", "schedule", "revert")
_CHECK_POINTS = 4000  # steps sampled when checking a schedule against a knob's bounds


class KnobSchedules:
    def __init__(self, initial: dict, specs: dict, bounds: dict, timing: Timing, given: dict | None = None):
        """initial: knob -> preset value; specs: knob -> schedule table (others stay constant); given: knob ->
        a schedule object made elsewhere (a scheduler of the user's, adopted), used as that knob's base."""
        self._given = dict(given or {})
        specs = {**specs, **{k: {"kind": "adopted"} for k in self._given}}
        unknown = sorted(set(specs) - set(initial))
        if unknown:
            raise UserError(f"no knob named {unknown[0]!r}; knobs: {', '.join(initial)}")
        self.timing, self.bounds = timing, {k: bounds.get(k, Bounds()) for k in initial}
        self.names = list(initial)
        self._initial = dict(initial)
        self._observed: list = []  # [step, metrics] for every observe, in order: replayed on load
        for k, spec in specs.items():
            if not isinstance(spec, dict):
                raise UserError(f"schedule for {k}: expected a table with a kind, got {spec!r}")
        self.specs = {k: dict(specs.get(k) or {"kind": "constant"}) for k in initial}
        self._base = {}
        self._factor = {}  # resolved follow factors, base schedules and overrides alike
        for k in self.names:
            if k in self._given:
                self._base[k] = self._given[k]
                continue
            start = spec_start(self.specs[k], k, initial[k])
            self._base[k] = build_schedule(self.specs[k], knob=k, start=start, timing=timing)
        self._override: dict[str, dict] = {}
        self._held: dict[str, tuple] = {}  # knob -> (first step, step after the last, value): exact values kept
        self._order = self._resolve_order()
        at_zero: dict = {}
        for k in self._order:  # a follower keeps its starting ratio to the followed knob's value at step 0
            sched = self._base[k]
            if isinstance(sched, Follow):
                self._factor[(k, "base")] = self._follow_factor(k, sched, spec_start(self.specs[k], k, initial[k]), at_zero)
            at_zero[k] = self._value(k, 0, at_zero)
        self._check_range([k for k in self.names if k not in self._given], 0, "schedule for {knob}")

    # ---- values -------------------------------------------------------------------------
    def values(self, step: int, exact: bool = True) -> dict:
        """Every knob's value for update step+1.

        `exact=False` is for looking ahead (range checks, previews, next change): torch
        kinds then answer from their closed form instead of stepping there (equal up to
        float rounding). The training run always asks exact values.
        """
        out = {}
        if not exact:
            for k in self._order:
                out[k] = self._value(k, step, out, False)
            return out
        held = self._held
        for k in self._order:
            h = held.get(k)
            if h is not None and h[0] <= step < h[1]:
                out[k] = h[2]
                continue
            v = out[k] = self._value(k, step, out)
            n = self._hold(k, step)
            if n:
                held[k] = (step, step + n, v)
        return out

    def _hold(self, k: str, step: int) -> int | None:
        """For how many steps from `step` knob k keeps its value (None: it may change at the next step)."""
        ov = self._override.get(k)
        if ov is None or ov["op"] == "scale":
            sched, at = self._base[k], step
        elif ov["op"] == "set":
            return FOREVER
        else:
            sched, at = ov["schedule"], step - ov["step"]
        if isinstance(sched, Follow) or at < 0:
            return None
        hold = getattr(sched, "hold", None)
        return hold(at) if hold is not None else None

    def _value(self, k: str, step: int, out: dict, exact: bool = True) -> float:
        ov = self._override.get(k)
        if ov is None:
            return self._sched_value(k, "base", self._base[k], step, out, exact)
        op = ov["op"]
        if op == "set":
            return ov["value"]
        if op == "scale":
            return ov["factor"] * self._sched_value(k, "base", self._base[k], step, out, exact)
        return self._sched_value(k, "edit", ov["schedule"], step - ov["step"], out, exact)

    def _sched_value(self, k, which, sched, k_steps, out, exact) -> float:
        if isinstance(sched, Follow):
            return self._factor[(k, which)] * out[sched.knob]
        if not exact and hasattr(sched, "estimate"):
            return sched.estimate(max(k_steps, 0))
        return sched.value(max(k_steps, 0))

    def forget(self) -> None:
        """Forget every kept value (a schedule outside this object moved: the user's own scheduler)."""
        self._held.clear()

    def observe(self, metrics: dict, step: int = 0) -> None:
        """Hand validation metrics (val_loss, val_acc, train_loss), observed at `step`, to metric-driven
        schedules. An edit made at the same step comes after (the engine observes at the end of an epoch,
        before the next step boundary's commands)."""
        self._observed.append([step, dict(metrics)])
        self._held.clear()
        for k in self.names:
            self._base[k].observe(metrics)
            if k in self._override and "schedule" in self._override[k]:
                self._override[k]["schedule"].observe(metrics)

    # ---- edits ----------------------------------------------------------------------------
    def edit(self, knob: str, op: str, *, step: int, current: dict, value=None, factor=None, spec=None) -> dict:
        """Apply an edit at `step` (it affects updates step+1 onward); returns the edit event's fields.

        `current` holds every knob's value in use now (the start of a schedule-from-here).
        Raises UserError and changes nothing when the edit is not valid.
        """
        if knob not in self.bounds:
            raise UserError(f"no knob named {knob!r}; knobs: {', '.join(self.names)}")
        if op not in EDIT_OPS:
            raise UserError(f"unknown edit {op!r}; valid: {', '.join(EDIT_OPS)}")
        old = current[knob]
        record: dict = {"op": op, "step": step}
        fields: dict = {"knob": knob, "op": op}
        if op == "set":
            record["value"] = fields["value"] = self._edit_number(knob, "value", value)
        elif op == "scale":
            f = self._edit_number(knob, "factor", factor)
            if f < 0:
                raise UserError(f"{knob}: scale factor must be >= 0, got {f:g}")
            record["factor"] = fields["factor"] = f
        elif op == "schedule":
            if not isinstance(spec, dict):
                raise UserError(f"{knob}: a schedule edit needs a table with a kind")
            start = spec_start(spec, knob, old)
            sched = build_schedule(spec, knob=knob, start=start, timing=self.timing, origin=step)
            record.update(spec=dict(spec), start=start, schedule=sched)
            fields["spec"] = dict(spec)
        saved = (dict(self._override), dict(self._factor), list(self._order))
        self._held.clear()
        try:
            if op == "revert":
                self._override.pop(knob, None)
            else:
                self._override[knob] = record
            self._order = self._resolve_order()
            if op == "schedule" and isinstance(record["schedule"], Follow):
                self._factor[(knob, "edit")] = self._follow_factor(knob, record["schedule"], old, current)
            self._check_range([knob] + self._followers(knob), step, f"{op} {knob}: {{knob}}")
        except UserError:
            self._override, self._factor, self._order = saved
            self._held.clear()
            raise
        fields.update(old=old, new=self.values(step)[knob])
        return fields

    def preview(self, knob: str, op: str, *, step: int, current: dict, points: int = 64, **args) -> dict:
        """What `edit` would do, without doing it: the edit event's fields plus the curve before and after."""
        before = self.curve(knob, step, points)
        saved = (dict(self._override), dict(self._factor), list(self._order))
        try:
            fields = self.edit(knob, op, step=step, current=current, **args)
            after = self.curve(knob, step, points)
        finally:
            self._override, self._factor, self._order = saved
            self._held.clear()
        return {**fields, "before": before, "after": after, "from_step": step}

    def curve(self, knob: str, start: int, points: int = 64) -> list:
        """`knob`'s value at `points` evenly spaced steps from `start` to the run's last update."""
        last = max(self.timing.total_steps - 1, start)
        n = max(2, min(points, last - start + 1))
        if last <= start:
            return [self.values(start, exact=False)[knob]]
        return [self.values(start + round(i * (last - start) / (n - 1)), exact=False)[knob] for i in range(n)]

    def next_change(self, knob: str, step: int) -> tuple[int, float] | None:
        """(step, value) of the next update whose value differs from step's; None if it never changes."""
        last = self.timing.total_steps - 1
        v0 = self.values(step, exact=False)[knob]

        def differs(s: int) -> bool:
            return not math.isclose(self.values(s, exact=False)[knob], v0, rel_tol=1e-13, abs_tol=1e-18)

        lo, hi, gap = step, None, 1
        while lo < last:  # gallop forward, then bisect: schedules are piecewise smooth
            probe = min(step + gap, last)
            if differs(probe):
                hi = probe
                break
            lo, gap = probe, gap * 2
        if hi is None:
            return None
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if differs(mid):
                hi = mid
            else:
                lo = mid
        return hi, self.values(hi, exact=False)[knob]

    def _edit_number(self, knob: str, name: str, v) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise UserError(f"{knob}: {name} must be a finite number, got {v!r}")
        return float(v)

    def overridden(self, knob: str) -> str | None:
        """The active edit's op for `knob`, or None when it follows its preset schedule."""
        ov = self._override.get(knob)
        return ov["op"] if ov else None

    def describe(self, knob: str) -> str:
        """A short label of what drives `knob` now, e.g. `OneCycleLR max_lr=0.2 (step)` or `set 0.3 @1200`."""
        ov = self._override.get(knob)
        if ov is None and knob in self._given:
            return self._given[knob].describe()
        if ov is None:
            return describe_spec(self.specs[knob])
        if ov["op"] == "set":
            return f"set {ov['value']:g} @{ov['step']}"
        if ov["op"] == "scale":
            base = self._given[knob].describe() if knob in self._given else describe_spec(self.specs[knob])
            return f"x{ov['factor']:g} {base} @{ov['step']}"
        return f"{describe_spec(ov['spec'])} @{ov['step']}"

    def state_dict(self) -> dict:
        """JSON-able: the active edits and the observed metrics; rebuild with `load_state_dict`."""
        out = {}
        for k, ov in self._override.items():
            out[k] = {key: v for key, v in ov.items() if key != "schedule"}
            if (k, "edit") in self._factor:
                out[k]["follow_factor"] = self._factor[(k, "edit")]
        return {"overrides": out, "observed": [[s, dict(m)] for s, m in self._observed]}

    def load_state_dict(self, state: dict) -> None:
        """Back to `state`: base schedules rebuilt and shown every observed metric again, the active edits
        rebuilt and shown the metrics observed after their step."""
        observed = [[int(s), dict(m)] for s, m in state.get("observed", [])]
        self._held.clear()
        for k in self.names:
            if k in self._given:  # its state comes back with the user's scheduler (a checkpoint's component)
                continue
            self._base[k] = build_schedule(self.specs[k], knob=k, start=spec_start(self.specs[k], k, self._initial[k]),
                                           timing=self.timing)
            for _, m in observed:
                self._base[k].observe(m)
        self._override = {}
        self._factor = {key: v for key, v in self._factor.items() if key[1] != "edit"}
        for k, ov in state.get("overrides", {}).items():
            ov = dict(ov)
            if ov["op"] == "schedule":
                ov["schedule"] = build_schedule(ov["spec"], knob=k, start=ov["start"], timing=self.timing, origin=ov["step"])
                for s, m in observed:
                    if s > ov["step"]:
                        ov["schedule"].observe(m)
            if "follow_factor" in ov:
                self._factor[(k, "edit")] = ov.pop("follow_factor")
            self._override[k] = ov
        self._observed = observed
        self._order = self._resolve_order()

    # ---- helpers ---------------------------------------------------------------------------
    def _active(self, k: str):
        ov = self._override.get(k)
        if ov is None or ov["op"] == "scale":
            return self._base[k]
        return ov.get("schedule")

    def _resolve_order(self) -> list:
        """Knobs ordered so that a followed knob comes before its followers; cycles are errors."""
        order, state = [], {}

        def visit(k, path):
            if state.get(k) == "done":
                return
            if state.get(k) == "visiting":
                raise UserError(f"follow cycle: {' -> '.join(path + [k])}")
            state[k] = "visiting"
            sched = self._active(k)
            if isinstance(sched, Follow):
                if sched.knob not in self.bounds:
                    raise UserError(f"schedule for {k}: follows unknown knob {sched.knob!r}; knobs: {', '.join(self.names)}")
                visit(sched.knob, path + [k])
            state[k] = "done"
            order.append(k)

        for k in self.names:
            visit(k, [])
        return order

    def _followers(self, knob: str) -> list:
        out = []
        for k in self._order:
            sched = self._active(k)
            if isinstance(sched, Follow) and (sched.knob == knob or sched.knob in out):
                out.append(k)
        return out

    def _follow_factor(self, k: str, sched: Follow, own: float, others: dict) -> float:
        if sched.factor is not None:
            return sched.factor
        ref = others[sched.knob]
        if ref == 0:
            raise UserError(f"schedule for {k}: cannot keep a ratio to {sched.knob}, which is 0 now; give factor")
        return own / ref

    def _check_range(self, knobs: list, from_step: int, what: str) -> None:
        last = max(self.timing.total_steps - 1, from_step)  # values(last) drives the run's final update
        stride = max(1, (last - from_step) // _CHECK_POINTS)
        steps = list(range(from_step, last + 1, stride)) + [last]
        for s in steps:
            try:
                vals = self.values(s, exact=False)
            except UserError:
                raise
            except Exception as e:  # torch's arithmetic on the arguments given (an overflow, a division by zero)
                raise UserError(f"{what.format(knob=', '.join(knobs))} cannot be computed at step {s}: "
                                f"{type(e).__name__}: {e}") from None
            for k in knobs:
                why = self.bounds[k].problem(vals[k])
                if why:
                    raise UserError(f"{what.format(knob=k)} would be {vals[k]:g} at step {s}: {why.split(' is ', 1)[-1]}")
