"""Converting optimizer-update counts to a schedule's unit (steps or epochs).

`step` is the number of optimizer updates completed; the value for update k+1 is
computed when step == k. A schedule counts from its origin (0 for the preset's
schedule, the edit's step for a schedule given mid-run) in `unit = "step"` or
`"epoch"`; epochs may be fractional. A run has at most `MAX_STEPS` updates (a
one-line UserError past that). Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from schedtui.errors import UserError

UNITS = ("step", "epoch")
MAX_STEPS = 1_000_000_000  # optimizer updates in one run: more is a typo (--epochs 1e20), not a plan


@dataclass(frozen=True)
class Timing:
    steps_per_epoch: int
    total_steps: int

    def __post_init__(self):
        if self.steps_per_epoch < 1:
            raise ValueError("steps_per_epoch must be >= 1")
        if self.total_steps > MAX_STEPS:
            raise UserError(f"the run would take {self.total_steps:,} optimizer updates ({self.steps_per_epoch:,} "
                            f"per epoch); at most {MAX_STEPS:,}: fewer epochs or a larger batch")

    def in_unit(self, steps: int, unit: str) -> float:
        """`steps` optimizer updates expressed in `unit` (fractional epochs allowed)."""
        return float(steps) if unit == "step" else steps / self.steps_per_epoch

    def remaining(self, origin_step: int, unit: str) -> float:
        """What is left of the run after `origin_step`, in `unit` (at least one step)."""
        return self.in_unit(max(self.total_steps - origin_step, 1), unit)
