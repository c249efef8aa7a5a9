"""A chart's data: a bounded, downsampled series of (step, value) with marked points.

Appending is O(1); when `capacity` buckets are full, neighbouring buckets are
merged in pairs (their mean; a mark survives the merge) and the bucket size
doubles, so a run of any length stays within `capacity` points: memory is
bounded and long runs stay readable. `version` counts the changes, so a chart
drawn from it can tell that nothing moved. Pure Python; no torch, no textual.
"""

from __future__ import annotations

import math


class Series:
    __slots__ = ("capacity", "bucket", "steps", "values", "marks", "_acc", "_n", "_mark", "_first_step", "last", "version")

    def __init__(self, capacity: int = 1024):
        self.capacity = max(8, capacity - capacity % 2)
        self.bucket = 1  # samples per point
        self.steps: list[int] = []
        self.values: list[float] = []
        self.marks: list[bool] = []
        self._acc = 0.0
        self._n = 0
        self._mark = False
        self._first_step = 0
        self.last: float | None = None
        self.version = 0

    def append(self, step: int, value: float | None, mark: bool = False) -> None:
        self.version += 1
        if value is None or not math.isfinite(value):
            self._mark = self._mark or mark
            return
        self.last = value
        if self._n == 0:
            self._first_step = step
        self._acc += value
        self._n += 1
        self._mark = self._mark or mark
        if self._n >= self.bucket:
            self._push()

    def mark_next(self) -> None:
        """Mark the point that the next value lands in (an edit at this step)."""
        self._mark = True
        self.version += 1

    def _push(self) -> None:
        self.steps.append(self._first_step)
        self.values.append(self._acc / self._n)
        self.marks.append(self._mark)
        self._acc, self._n, self._mark = 0.0, 0, False
        if len(self.values) >= self.capacity:
            self.steps = self.steps[::2]
            self.values = [(a + b) / 2 for a, b in zip(self.values[::2], self.values[1::2])]
            self.marks = [a or b for a, b in zip(self.marks[::2], self.marks[1::2])]
            self.bucket *= 2

    def points(self) -> tuple[list[float], list[bool]]:
        """Every point so far, the partial bucket included."""
        if self._n:
            return self.values + [self._acc / self._n], self.marks + [self._mark]
        return list(self.values), list(self.marks)

    def __len__(self) -> int:
        return len(self.values) + (1 if self._n else 0)
