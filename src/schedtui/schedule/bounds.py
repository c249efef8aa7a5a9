"""The range of values a knob accepts (e.g. dropout in [0, 1), lr >= 0).

Pure Python; no project imports besides nothing. Used to reject a bad preset value
or edit with a one-line reason before anything changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Bounds:
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def problem(self, value: float) -> str | None:
        """Why `value` is not allowed, or None when it is."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{value!r} is not a number"
        if not math.isfinite(value):
            return f"{value} is not a finite number"
        if value < self.lo or (self.lo_open and value == self.lo):
            return f"{value:g} is below the allowed range {self}"
        if value > self.hi or (self.hi_open and value == self.hi):
            return f"{value:g} is above the allowed range {self}"
        return None

    def __str__(self) -> str:
        left = "(" if self.lo_open or self.lo == -math.inf else "["
        right = ")" if self.hi_open or self.hi == math.inf else "]"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"


# What an optimizer, a loss or a clip multiplies with float32 tensors: past this, float32 arithmetic overflows
# (a weight_decay of 1e300 crashed a run in Adam's step). Far above any useful lr, weight decay, loss weight or clip.
MAX_SCALE = 1e6
NONNEGATIVE = Bounds(0.0, MAX_SCALE)
UNIT_OPEN = Bounds(0.0, 1.0, hi_open=True)
UNIT = Bounds(0.0, 1.0)
ANY = Bounds()
