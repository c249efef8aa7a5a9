"""Native schedule kinds for quick edits: constant, linear, cosine, milestones, piecewise, follow.

Each is a closed form of the steps since its origin, so any step can be asked in
any order and the result is the same. `follow` is resolved by `KnobSchedules`
(it needs another knob's value at the same step). Pure Python, no torch.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from schedtui.schedule.timing import Timing


@dataclass
class NativeSchedule:
    unit: str
    timing: Timing

    def t(self, k: int) -> float:
        return self.timing.in_unit(k, self.unit)

    def observe(self, metrics: dict) -> None:  # only ReduceLROnPlateau reacts to metrics
        return None


@dataclass
class Constant(NativeSchedule):
    value_: float

    def value(self, k: int) -> float:
        return self.value_


@dataclass
class Ramp(NativeSchedule):
    """linear or cosine from `start` to `end` over `duration` units, then holds `end`."""

    start: float
    end: float
    duration: float
    shape: str  # "linear" | "cosine"

    def value(self, k: int) -> float:
        frac = min(max(self.t(k) / self.duration, 0.0), 1.0)
        if self.shape == "linear":
            return self.start + (self.end - self.start) * frac
        return self.end + (self.start - self.end) * (1.0 + math.cos(math.pi * frac)) / 2.0


@dataclass
class Milestones(NativeSchedule):
    """`start` until the first milestone, then the value of the latest milestone reached."""

    start: float
    times: list
    values: list

    def value(self, k: int) -> float:
        i = bisect.bisect_right(self.times, self.t(k))
        return self.start if i == 0 else self.values[i - 1]


@dataclass
class Piecewise(NativeSchedule):
    """Straight lines through (time, value) points; starts from `start` at 0 if the first point is later."""

    times: list
    values: list

    def value(self, k: int) -> float:
        t = self.t(k)
        i = bisect.bisect_right(self.times, t)
        if i == 0:
            return self.values[0]
        if i == len(self.times):
            return self.values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


@dataclass
class Follow(NativeSchedule):
    """`factor` times another knob's value at the same step (factor None: keep the starting ratio)."""

    knob: str
    factor: float | None

    def value(self, k: int) -> float:  # pragma: no cover - resolved by KnobSchedules
        raise RuntimeError("follow schedules are evaluated by KnobSchedules")
