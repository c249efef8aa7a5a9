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

`columns(x0, x1, n)` gives what a chart draws: the mean of the points in each of
n columns spanning steps x0..x1. It is incremental: while x0, x1 and n hold (a
live chart's axis holds still for a while: `plot.nice_end`), a frame folds in only
the points added since the last one, so its cost does not grow with the run.
`Curve` is the same interface over fixed lists (replay builds them from a
timeline). `last` is the latest value; `version` counts changes. Non-finite values
are not drawn. Pure Python; no torch, no textual.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left, bisect_right
from collections import deque

from schedtui.ui.plot import columns

_CURVES = itertools.count(1)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class StepSeries:
    __slots__ = ("capacity", "width", "sums", "ssums", "counts", "recent", "last", "last_step", "version", "_rewinds",
                 "_cache")

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
        self._rewinds = 0  # values written before what was already held: the columns start over
        self._cache: list | None = None  # [key, column sums, column counts, what is folded in so far]

    def add(self, step: int, value, weight: float = 1.0) -> None:
        """Add a value at `step` (`weight`: how many steps it stands for, for a point read from buckets)."""
        if value.__class__ is not float or value - value != 0.0:  # the common case in one test: a finite float
            if not _finite(value):
                return
        self.version += 1
        recent = self.recent
        if recent and step <= recent[-1][0]:  # a run resumed from an earlier step: the new values replace
            self._rewinds += 1
            while recent and recent[-1][0] >= step:
                recent.pop()
        recent.append((step, value))
        self.last, self.last_step = value, step
        if step > self.width * self.capacity:
            while step > self.width * self.capacity:
                self._merge()
        j = (int(step) - 1) // self.width if step > 0 else 0
        sums = self.sums
        n = len(sums)
        if j >= n:
            grow = j + 1 - n
            sums.extend([0.0] * grow)
            self.ssums.extend([0.0] * grow)
            self.counts.extend([0.0] * grow)
        elif j < n - 1:
            self._rewinds += 1
        sums[j] += value * weight
        self.ssums[j] += step * weight
        self.counts[j] += weight

    def extend(self, steps: list, values: list) -> None:
        """`add` each (step, value), steps ascending past what is held: a frame's run of steps in one go."""
        recent = self.recent
        if (not steps or (recent and steps[0] <= recent[-1][0]) or steps[-1] > self.width * self.capacity
                or steps[0] < 1 or not all(v.__class__ is float for v in values) or not math.isfinite(sum(values))):
            for st, v in zip(steps, values):  # anything unusual: one at a time
                self.add(st, v)
            return
        self.version += 1
        recent.extend(zip(steps, values))
        w, sums, ssums, counts = self.width, self.sums, self.ssums, self.counts
        j1 = (steps[-1] - 1) // w
        if j1 >= len(sums):
            grow = j1 + 1 - len(sums)
            sums.extend([0.0] * grow)
            ssums.extend([0.0] * grow)
            counts.extend([0.0] * grow)
        for st, v in zip(steps, values):
            j = (st - 1) // w
            sums[j] += v
            ssums[j] += st
            counts[j] += 1.0
        self.last, self.last_step = values[-1], steps[-1]

    def _merge(self) -> None:
        if len(self.sums) % 2:
            self.sums.append(0.0)
            self.ssums.append(0.0)
            self.counts.append(0.0)
        for name in ("sums", "ssums", "counts"):
            v = getattr(self, name)
            setattr(self, name, [a + b for a, b in zip(v[::2], v[1::2])])
        self.width *= 2

    def _narrow(self, x0: float, x1: float) -> bool:
        """Draw from the recent values: the window is narrow for the buckets and they reach back to x0."""
        recent = self.recent
        return bool(recent) and (x1 - x0) / self.width < self.capacity // 2 and (
            len(recent) < recent.maxlen or recent[0][0] <= x0)

    def curve(self, x0: float, x1: float) -> tuple[list[float], list[float]]:
        """(steps, values) from step x0 to x1, ascending: the recent values one by one in a narrow window,
        else the buckets' points."""
        if self._narrow(x0, x1):
            pts = [p for p in self.recent if x0 <= p[0] <= x1]
            return [p[0] for p in pts], [p[1] for p in pts]
        steps, values = [], []
        for s, v, n in zip(self.ssums, self.sums, self.counts):
            if n > 0 and x0 <= s / n <= x1:
                steps.append(s / n)
                values.append(v / n)
        return steps, values

    def columns(self, x0: float, x1: float, n: int) -> list:
        """The mean value in each of `n` columns spanning steps x0..x1 (None: nothing there)."""
        narrow = self._narrow(x0, x1)
        key = (narrow, x0, x1, n, self.width, self._rewinds)
        c = self._cache
        if c is None or c[0] != key:
            c = self._cache = [key, [0.0] * n, [0] * n, -math.inf if narrow else 0]
        sums, counts = c[1], c[2]
        scale, last_col = n / max(x1 - x0, 1e-9), n - 1

        def put(s: float, v: float) -> None:
            if x0 <= s <= x1:
                col = int((s - x0) * scale)
                col = last_col if col > last_col else col
                sums[col] += v
                counts[col] += 1

        pending = None
        if narrow:  # each recent value is whole once added: fold in the ones past the last folded step
            new = list(itertools.takewhile(lambda p: p[0] > c[3], reversed(self.recent)))
            for s, v in reversed(new):
                put(s, v)
            if new:
                c[3] = new[0][0]
        else:  # buckets before the last are whole (steps come in order); the last one is counted each time
            last = len(self.sums) - 1
            j = c[3]
            while j < last:
                k = self.counts[j]
                if k > 0:
                    put(self.ssums[j] / k, self.sums[j] / k)
                j += 1
            c[3] = j
            if last >= 0 and self.counts[last] > 0:
                k = self.counts[last]
                pending = (self.ssums[last] / k, self.sums[last] / k)
        out = [s / k if k else None for s, k in zip(sums, counts)]
        if pending is not None and x0 <= pending[0] <= x1:
            col = min(last_col, int((pending[0] - x0) * scale))
            out[col] = (sums[col] + pending[1]) / (counts[col] + 1)
        return out


class Curve:
    """Fixed (step, value) points with the interface of a `StepSeries` (replay draws these). Each has a
    version of its own, so a chart drawn from another curve is drawn again."""

    __slots__ = ("steps", "values", "last", "version")

    def __init__(self, steps: list, values: list, last=None):
        pairs = [(s, v) for s, v in zip(steps, values) if _finite(v)]
        self.steps = [s for s, _ in pairs]
        self.values = [v for _, v in pairs]
        self.last = last if last is not None else (self.values[-1] if self.values else None)
        self.version = next(_CURVES)

    def curve(self, x0: float, x1: float) -> tuple[list[float], list[float]]:
        i, k = bisect_left(self.steps, x0), bisect_right(self.steps, x1)
        return self.steps[i:k], self.values[i:k]

    def columns(self, x0: float, x1: float, n: int) -> list:
        steps, values = self.curve(x0, x1)
        return columns(steps, values, x0, x1, n)
