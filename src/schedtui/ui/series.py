"""A chart's data on the shared x-axis: values by step, bounded, with the recent steps at full detail.

`StepSeries` folds (step, value) pairs into buckets of `width` consecutive steps
(bucket j holds steps j*width+1 .. (j+1)*width; step 0 goes to the first): each
keeps the sum of its values, of their steps and their count, so a bucket's point
sits at the mean step of what it holds, wherever the values came from (one per
step for the loss and the knobs, one per epoch for a validation). When a step
lands past `capacity` buckets, neighbours merge in pairs and `width` doubles:
memory stays bounded for a run of any length. The last `recent` values are also
kept one by one, so a window of the last few thousand steps is drawn at full
detail. A value for a step at or before one already held (a resumed run going on
from an earlier checkpoint) replaces the recent ones from that step on.

`Curve` is the same interface over fixed lists (replay builds them from a
timeline). `curve(x0, x1)` gives the (steps, values) to draw between two steps;
`last` is the latest value; `version` counts changes. Non-finite values are not
drawn. Pure Python; no torch, no textual.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left, bisect_right
from collections import deque


class StepSeries:
    __slots__ = ("capacity", "width", "sums", "ssums", "counts", "recent", "last", "last_step", "version")

    def __init__(self, capacity: int = 1024, recent: int = 4096):
        self.capacity = max(8, capacity - capacity % 2)
        self.width = 1  # steps per bucket
        self.sums: list[float] = []
        self.ssums: list[float] = []
        self.counts: list[float] = []
        self.recent: deque = deque(maxlen=recent)  # (step, value), one per value added
        self.last: float | None = None
        self.last_step: int | None = None
        self.version = 0

    def add(self, step: int, value, weight: float = 1.0) -> None:
        """Add a value at `step` (`weight`: how many steps it stands for, for a point read from buckets)."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        self.version += 1
        recent = self.recent
        if recent and step <= recent[-1][0]:  # a run resumed from an earlier step: the new values replace
            while recent and recent[-1][0] >= step:
                recent.pop()
        recent.append((step, value))
        self.last, self.last_step = value, step
        while step > self.width * self.capacity:
            self._merge()
        j = (step - 1) // self.width if step > 0 else 0
        sums = self.sums
        if j >= len(sums):
            grow = j + 1 - len(sums)
            sums.extend([0.0] * grow)
            self.ssums.extend([0.0] * grow)
            self.counts.extend([0.0] * grow)
        sums[j] += value * weight
        self.ssums[j] += step * weight
        self.counts[j] += weight

    def _merge(self) -> None:
        if len(self.sums) % 2:
            self.sums.append(0.0)
            self.ssums.append(0.0)
            self.counts.append(0.0)
        for name in ("sums", "ssums", "counts"):
            v = getattr(self, name)
            setattr(self, name, [a + b for a, b in zip(v[::2], v[1::2])])
        self.width *= 2

    def curve(self, x0: float, x1: float) -> tuple[list[float], list[float]]:
        """(steps, values) from step x0 on, ascending: the buckets, or the recent values one by one when the
        window is narrow for the buckets (fewer than half `capacity` of them) and the recent values reach back
        to x0."""
        recent = self.recent
        narrow = (x1 - x0) / self.width < self.capacity // 2
        if narrow and recent and (len(recent) < recent.maxlen or recent[0][0] <= x0):
            pts = list(recent)
            i = bisect_left(pts, (x0, -math.inf))
            return [p[0] for p in pts[i:]], [p[1] for p in pts[i:]]
        w = self.width
        j0 = max(0, int(x0 - 1) // w)
        steps, values = [], []
        for s, v, n in zip(self.ssums[j0:], self.sums[j0:], self.counts[j0:]):
            if n > 0:
                steps.append(s / n)
                values.append(v / n)
        return steps, values

    def __len__(self) -> int:
        return sum(1 for n in self.counts if n > 0)


_CURVES = itertools.count(1)


class Curve:
    """Fixed (step, value) points with the interface of a `StepSeries` (replay draws these). Each has a
    version of its own, so a chart drawn from another curve is drawn again."""

    __slots__ = ("steps", "values", "last", "version")

    def __init__(self, steps: list, values: list, last=None):
        pairs = [(s, v) for s, v in zip(steps, values)
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        self.steps = [s for s, _ in pairs]
        self.values = [v for _, v in pairs]
        self.last = last if last is not None else (self.values[-1] if self.values else None)
        self.version = next(_CURVES)

    def curve(self, x0: float, x1: float) -> tuple[list[float], list[float]]:
        i, k = bisect_left(self.steps, x0), bisect_right(self.steps, x1)
        return self.steps[i:k], self.values[i:k]

    def __len__(self) -> int:
        return len(self.values)
