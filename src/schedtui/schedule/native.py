"""Native schedule kinds for quick edits: constant, linear, cosine, milestones, piecewise, follow.

Each is a closed form of the steps since its origin, so any step can be asked in
any order and the result is the same. `follow` is resolved by `KnobSchedules`
(it needs another knob's value at the same step). `hold(k)` says for how many
steps from k the value stays exactly `value(k)` (`FOREVER`, a count, or None when
it moves at the next step or cannot tell), so a training run need not recompute a
value that cannot have changed. Pure Python, no torch.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from schedtui.schedule.timing import Timing

FOREVER = 1 << 62  # a hold that never ends (until an edit or an observed metric changes the schedule)


@dataclass
class NativeSchedule:
    unit: str
    timing: Timing

    def t(self, k: int) -> float:
        return self.timing.in_unit(k, self.unit)

    def observe(self, metrics: dict) -> None:  # only ReduceLROnPlateau reacts to metrics
        return None

    def hold(self, k: int) -> int | None:
        return None

    def _first_at(self, k: int, time: float) -> int:
        """The first step after k whose time reaches `time` (exactly as `t` computes it)."""
        c = max(k + 1, math.ceil(time * self.timing.steps_per_epoch) if self.unit == "epoch" else math.ceil(time))
        while c > k + 1 and self.t(c - 1) >= time:
            c -= 1
        while self.t(c) < time:
            c += 1
        return c


@dataclass
class Constant(NativeSchedule):
    value_: float

    def value(self, k: int) -> float:
        return self.value_

    def hold(self, k: int) -> int | None:
        return FOREVER


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

    def hold(self, k: int) -> int | None:
        return FOREVER if self.t(k) >= self.duration else None  # past its end it holds `end`


@dataclass
class Milestones(NativeSchedule):
    """`start` until the first milestone, then the value of the latest milestone reached."""

    start: float
    times: list
    values: list

    def value(self, k: int) -> float:
        i = bisect.bisect_right(self.times, self.t(k))
        return self.start if i == 0 else self.values[i - 1]

    def hold(self, k: int) -> int | None:
        i = bisect.bisect_right(self.times, self.t(k))
        return FOREVER if i == len(self.times) else self._first_at(k, self.times[i]) - k


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

    def hold(self, k: int) -> int | None:
        i = bisect.bisect_right(self.times, self.t(k))
        if i == len(self.times):
            return FOREVER
        if i > 0 and self.values[i - 1] == self.values[i]:  # a flat segment: v0 until the next point
            return self._first_at(k, self.times[i]) - k
        return None


@dataclass
class Follow(NativeSchedule):
    """`factor` times another knob's value at the same step (factor None: keep the starting ratio)."""

    knob: str
    factor: float | None

    def value(self, k: int) -> float:  # pragma: no cover - resolved by KnobSchedules
        raise RuntimeError("follow schedules are evaluated by KnobSchedules")
