"""Knob values between the schedules and the live objects: written when they change, read back every update.

`KnobWriter(knobs, schedules, adopted)`:
- `values` is every knob's value for the next update, as the schedules say.
  It starts from what the live objects hold (a knob is *adopted*: its preset
  value is the live value), and `advance(step)` writes only the knobs whose
  scheduled value changed since the last write, so nothing is written to a
  user's objects unless a schedule or an edit names the knob.
- `read_back()` reads every knob's live value after an update: the values that
  update really used. When they all equal `values` (the usual case) it returns
  `values` itself (no copy). When something else changed a knob (the user's code,
  a scheduler schedtui does not know), it returns a dict with the actual values
  and reports each such knob once (knob, expected, actual) until the two agree
  again: the run core turns that into a `warning` event, and the log carries
  the actual value.
- Module knobs whose modules hold different values (dropout 0.25 and 0.5) keep
  each module's own value while the knob follows its adopted values (no preset
  schedule, no edit, or a `scale` edit: each module's own value scaled); a `set`,
  a `schedule` edit or a preset schedule writes the one value to every module.
  `refresh_modes()` tells such knobs which mode they are in after an edit.
- `force(names)`: write these knobs at the next `advance` even if their scheduled
  value did not change (a scheduler of the user's wrote over them).

torch only through the knobs; no textual/rich.
"""

from __future__ import annotations

class KnobWriter:
    def __init__(self, knobs: dict, schedules, adopted: set):
        self.knobs, self.schedules, self.adopted = knobs, schedules, set(adopted)
        self.values: dict = {k: kn.get() for k, kn in knobs.items()}
        self._written = dict(self.values)  # what each knob was last set to (or found at)
        self._drifted: set = set()
        self._force: set = set()
        self._gets = [(k, kn.get) for k, kn in knobs.items()]
        self.refresh_modes()

    def advance(self, step: int) -> dict:
        """Compute every knob's value for update step+1 and write the ones that changed; returns `values`."""
        vals = self.schedules.values(step)
        written, force, knobs = self._written, self._force, self.knobs
        for k, v in vals.items():
            if written.get(k) != v or k in force:
                knobs[k].set(v)
                written[k] = v
        if force:
            force.clear()
        self.values = vals
        return vals

    def force(self, names) -> None:
        self._force.update(n for n in names if n in self.knobs)

    def refresh_modes(self) -> None:
        """After an edit (or a state load): module knobs learn whether they follow their adopted values."""
        s = self.schedules
        for k, kn in self.knobs.items():
            mode = getattr(kn, "follow_adopted", None)
            if mode is not None:
                follows = k in self.adopted and s.overridden(k) in (None, "scale")
                if mode(follows):
                    self._force.add(k)  # the same value now means other module values

    def read_back(self) -> tuple[dict, list]:
        """(the values the live objects hold, [(knob, expected, actual)] newly diverged); see the module docstring."""
        vals = self.values
        diff = None
        for k, get in self._gets:
            v = get()
            if v != vals[k] and not (v != v and vals[k] != vals[k]):  # NaN held where NaN was meant is no change
                if diff is None:
                    diff = {}
                diff[k] = v
        if diff is None:
            if self._drifted:
                self._drifted.clear()
            return vals, []
        new = [(k, vals[k], v) for k, v in diff.items() if k not in self._drifted]
        self._drifted.intersection_update(diff)
        self._drifted.update(diff)
        actual = dict(vals)
        actual.update(diff)
        return actual, new

    def adopt_live(self) -> None:
        """Take the live values as what was last written (after the user's scheduler wrote them)."""
        for k, get in self._gets:
            self._written[k] = get()

