"""The arguments of the torch schedule kinds, checked before torch sees them.

torch's scheduler classes check few of their arguments when built; many wrong
ones fail only later, in the middle of a run: a `step_size`, `T_max` or
`total_iters` of 0 divides by zero at the first step, a string `eta_min` raises
TypeError when the value is computed, a negative `power` divides by zero at the
end of the schedule. `check_torch_args(kind, args, knob)` checks every argument
of every kind in `TORCH_ARGS` for its type and range (what torch's signature
says, and what its arithmetic needs), and returns a copy with integers that
torch wants as floats made floats (so `pct_start = 1` is accepted, as `1.0` is).
A problem is a one-line UserError naming the knob, the kind and the argument.
An argument a newer torch adds and this table does not know goes to torch as is.
Pure Python; no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from schedtui.errors import UserError
from schedtui.schedule.timing import MAX_STEPS


@dataclass(frozen=True)
class Num:
    """A finite number (not a bool), optionally in a range; given to torch as a float."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    one_group: bool = False  # torch also takes a list with a value per parameter group: here one group

    def check(self, v):
        if self.one_group and isinstance(v, list):
            if len(v) != 1:
                raise ValueError(f"a number, or a list of one (the schedule drives one value), got {v!r}")
            return [self.check(v[0])]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {v!r}")
        if v < self.lo or (self.lo_open and v == self.lo) or v > self.hi or (self.hi_open and v == self.hi):
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            raise ValueError(f"{v!r} is out of range {left}{self.lo:g}, {self.hi:g}{right}")
        return float(v)


@dataclass(frozen=True)
class Int:
    """A whole number in [lo, hi]; or a list of them (`many`, e.g. milestones)."""

    lo: int = 0
    hi: int = MAX_STEPS
    many: bool = False

    def check(self, v):
        if self.many:
            if not isinstance(v, list) or len(v) > 10_000:
                raise ValueError(f"must be a list of whole numbers, got {v!r}")
            return [Int(self.lo, self.hi).check(x) for x in v]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"must be a whole number, got {v!r}")
        if not self.lo <= v <= self.hi:
            raise ValueError(f"{v!r} is out of range [{self.lo}, {self.hi}]")
        return v


@dataclass(frozen=True)
class Choice:
    values: tuple

    def check(self, v):
        if v not in self.values or isinstance(v, bool):
            raise ValueError(f"must be one of {', '.join(map(repr, self.values))}, got {v!r}")
        return v


class Bool:
    @staticmethod
    def check(v):
        if not isinstance(v, bool):
            raise ValueError(f"must be true or false, got {v!r}")
        return v


ANY = Num()
POSITIVE = Num(0.0, lo_open=True)
PERIOD = Int(1)  # a length in steps or epochs: 0 divides by zero in torch
ANNEAL = Choice(("cos", "linear"))

TORCH_ARGS: dict[str, dict] = {
    "StepLR": {"step_size": PERIOD, "gamma": ANY},
    "MultiStepLR": {"milestones": Int(0, many=True), "gamma": ANY},
    "ExponentialLR": {"gamma": ANY},
    "CosineAnnealingLR": {"T_max": PERIOD, "eta_min": ANY},
    "CosineAnnealingWarmRestarts": {"T_0": PERIOD, "T_mult": PERIOD, "eta_min": ANY},
    "OneCycleLR": {
        "max_lr": Num(one_group=True), "total_steps": PERIOD, "epochs": PERIOD, "steps_per_epoch": PERIOD,
        "pct_start": Num(0.0, 1.0), "anneal_strategy": ANNEAL, "cycle_momentum": Bool,
        "base_momentum": Num(one_group=True), "max_momentum": Num(one_group=True),
        "div_factor": POSITIVE, "final_div_factor": POSITIVE, "three_phase": Bool,
    },
    "CyclicLR": {
        "base_lr": Num(one_group=True), "max_lr": Num(one_group=True), "step_size_up": PERIOD, "step_size_down": Int(0),
        "mode": Choice(("triangular", "triangular2", "exp_range")), "gamma": ANY,
        "scale_mode": Choice(("cycle", "iterations")), "cycle_momentum": Bool, "base_momentum": ANY, "max_momentum": ANY,
    },
    "LinearLR": {"start_factor": Num(0.0, 1.0, lo_open=True), "end_factor": Num(0.0, 1.0), "total_iters": PERIOD},
    "PolynomialLR": {"total_iters": PERIOD, "power": Num(0.0)},  # a negative power divides by zero at the end
    "ReduceLROnPlateau": {
        "mode": Choice(("min", "max")), "factor": Num(0.0, 1.0, hi_open=True), "patience": Int(0),
        "threshold": Num(0.0), "threshold_mode": Choice(("rel", "abs")), "cooldown": Int(0),
        "min_lr": Num(0.0, one_group=True), "eps": Num(0.0),
    },
    "SWALR": {"swa_lr": Num(0.0, one_group=True), "anneal_epochs": Int(0), "anneal_strategy": ANNEAL},
}


def check_torch_args(kind: str, args: dict, knob: str) -> dict:
    """A checked copy of `args` for torch's `kind`; one-line UserError on the first bad one."""
    rules = TORCH_ARGS.get(kind, {})
    out = {}
    for name, value in args.items():
        rule = rules.get(name)
        try:
            out[name] = value if rule is None else rule.check(value)
        except ValueError as e:
            raise UserError(f"schedule for {knob}: {kind} {name} {e}") from None
    return out
