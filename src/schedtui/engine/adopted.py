"""A scheduler of the user's own, adopted: schedtui steps it and shows it as the schedule of what it drives.

`adopt_scheduler(sched, optimizer, unit, metric, cfg)` takes a
`torch.optim.lr_scheduler` object (any `LRScheduler`, `ReduceLROnPlateau`,
`SequentialLR`...) built on the run's optimizer. The run core steps it at the
boundary the user says — `unit="step"` after every update (the default for
OneCycleLR and CyclicLR), `"epoch"` at every epoch's end (the default otherwise)
— and `ReduceLROnPlateau` with the metric it watches (`metric`, default
`val_loss`, or `val_acc` for mode "max"). It drives the lr of every parameter
group (and the momentum, when it cycles momentum): the base schedule of the
knobs `lr`, `lr@GROUP` (and `momentum`, `momentum@GROUP`) is this scheduler
(`schedule_for(knob)`), and an edit overrides it from its step as for any
schedule; `revert` goes back to it.

What the scheduler last wrote is kept: before each step it is put back into the
optimizer (an edit may have written over it, and a chainable scheduler such as
StepLR computes from the value it finds), then the scheduler steps and what it
writes now is kept. So the user's scheduler runs exactly as it would alone, and
its `state_dict()` goes into checkpoints. Looking ahead (a preview, the next
change) steps a copy of it on a stand-in optimizer, at most `LOOK_AHEAD` steps.
torch only; no textual/rich.
"""

from __future__ import annotations

import copy
import math
import warnings
from array import array

from schedtui.errors import UserError
from schedtui.schedule.native import FOREVER

LOOK_AHEAD = 20_000  # scheduler steps a preview or next-change search may simulate
_PER_STEP = ("OneCycleLR", "CyclicLR")


def adopt_scheduler(sched, optimizer, unit: str | None, metric: str | None, cfg: dict) -> "AdoptedScheduler":
    import torch

    plateau = isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if not plateau and not isinstance(sched, torch.optim.lr_scheduler.LRScheduler):
        raise UserError(f"scheduler must be a torch.optim.lr_scheduler object, got {type(sched).__name__}")
    if getattr(sched, "optimizer", None) is not optimizer:
        raise UserError("scheduler: it was built on another optimizer than the one schedtui was given")
    kind = type(sched).__name__
    unit = unit or ("step" if kind in _PER_STEP else "epoch")
    if unit not in ("step", "epoch"):
        raise UserError(f"scheduler_unit must be 'step' or 'epoch', got {unit!r}")
    if plateau and unit != "epoch":
        raise UserError("scheduler_unit: ReduceLROnPlateau steps on a validation metric, once per epoch")
    if plateau:
        metric = metric or ("val_acc" if getattr(sched, "mode", "min") == "max" else "val_loss")
        if not isinstance(metric, str):
            raise UserError(f"scheduler_metric must be a metric name such as val_loss, got {metric!r}")
    for key in ("lr", "momentum", "betas"):
        if key in cfg["schedules"] and (key == "lr" or getattr(sched, "cycle_momentum", False)):
            raise UserError(f"schedules.{key}: your scheduler drives {key}; give one or the other (edits still "
                            "override it while the run goes)")
    return AdoptedScheduler(sched, optimizer, unit, metric if plateau else None)


class AdoptedScheduler:
    def __init__(self, sched, optimizer, unit: str, metric: str | None):
        self.sched, self.optimizer, self.unit, self.metric = sched, optimizer, unit, metric
        self.kind = type(sched).__name__
        self.plateau = metric is not None
        self.settings = [(i, "lr", None) for i in range(len(optimizer.param_groups))]
        if getattr(sched, "cycle_momentum", False):
            key, idx = ("betas", 0) if "betas" in optimizer.param_groups[0] else ("momentum", None)
            self.settings += [(i, key, idx) for i in range(len(optimizer.param_groups))]
        self.knobs: list[str] = []  # the knob names it drives, once bound
        self.steps_per_epoch = 1
        self.steps = 0  # how many times it was stepped
        self.last = {s: self._read(s) for s in self.settings}
        self._ahead: dict | None = None  # setting -> array of simulated values after this many more steps

    def _read(self, s) -> float:
        i, key, idx = s
        v = self.optimizer.param_groups[i][key]
        return float(v if idx is None else v[idx])

    def _write(self, s, v: float) -> None:
        i, key, idx = s
        g = self.optimizer.param_groups[i]
        if idx is None:
            g[key] = v
        else:
            t = list(g[key])
            t[idx] = v
            g[key] = tuple(t)

    def bind(self, knob_of: dict, steps_per_epoch: int) -> None:
        """`knob_of`: (group index, key, index) -> knob name, for the knobs this scheduler drives."""
        self.knobs = [knob_of[s] for s in self.settings if s in knob_of]
        self.steps_per_epoch = steps_per_epoch

    def schedule_for(self, setting) -> "AdoptedSchedule":
        return AdoptedSchedule(self, setting)

    def step(self, metrics: dict | None = None) -> None:
        """Step it once (see the module docstring)."""
        for s, v in self.last.items():
            if self._read(s) != v:
                self._write(s, v)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's order warnings: the boundary is after optimizer.step()
            if self.plateau:
                value = (metrics or {}).get(self.metric)
                if value is None or not math.isfinite(value):
                    return
                self.sched.step(value)
            else:
                self.sched.step()
        self.steps += 1
        self.last = {s: self._read(s) for s in self.settings}
        self._ahead = None

    def value(self, setting) -> float:
        return self.last[setting]

    def estimate(self, setting, ahead: int) -> float:
        """The value `ahead` scheduler steps from now (a copy stepped on a stand-in optimizer; cached)."""
        if ahead <= 0 or self.plateau:
            return self.last[setting]
        ahead = min(ahead, LOOK_AHEAD)
        if self._ahead is None or len(self._ahead[setting]) < ahead:
            self._simulate(max(ahead, 2 * len(self._ahead[setting]) if self._ahead else 64))
        values = self._ahead[setting]
        return values[min(ahead, len(values)) - 1]

    def _simulate(self, n: int) -> None:
        import torch

        n = min(n, LOOK_AHEAD)
        stand_in = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
        stand_in.param_groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [torch.zeros(1)]}
                                 for g in self.optimizer.param_groups]
        for s, v in self.last.items():
            i, key, idx = s
            g = stand_in.param_groups[i]
            if idx is None:
                g[key] = v
            else:
                t = list(g[key])
                t[idx] = v
                g[key] = tuple(t)
        try:
            clone = copy.deepcopy(self.sched, memo={id(self.optimizer): stand_in})
        except Exception:  # a scheduler that cannot be copied: look-ahead holds the current value
            self._ahead = {s: array("d", [v]) for s, v in self.last.items()}
            return
        out = {s: array("d") for s in self.settings}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(n):
                try:
                    clone.step()
                except Exception:  # stepped past its end (OneCycleLR): hold the last value
                    break
                for s in self.settings:
                    i, key, idx = s
                    v = stand_in.param_groups[i][key]
                    out[s].append(float(v if idx is None else v[idx]))
        for s, values in out.items():
            if not values:
                values.append(self.last[s])
        self._ahead = out

    def describe(self) -> str:
        return f"your {self.kind} ({'per ' + self.unit}{', on ' + self.metric if self.metric else ''})"

    def state_dict(self) -> dict:
        return {"scheduler": self.sched.state_dict(), "steps": self.steps,
                "last": [[i, key, -1 if idx is None else idx, v] for (i, key, idx), v in self.last.items()]}

    def load_state_dict(self, state: dict) -> None:
        self.sched.load_state_dict(state["scheduler"])
        self.steps = state["steps"]
        self.last = {(i, key, None if idx == -1 else idx): v for i, key, idx, v in state["last"]}
        for s, v in self.last.items():
            self._write(s, v)
        self._ahead = None


class AdoptedSchedule:
    """One setting of an adopted scheduler as a knob's base schedule (the `KnobSchedules` protocol)."""

    kind = "adopted"

    def __init__(self, owner: AdoptedScheduler, setting):
        self.owner, self.setting = owner, setting
        self.unit = owner.unit

    def value(self, k: int) -> float:
        return self.owner.value(self.setting)

    def hold(self, k: int) -> int:
        return FOREVER  # it moves only when stepped, and the run core forgets kept values then

    def estimate(self, k: int) -> float:
        o = self.owner
        spe = o.steps_per_epoch if o.unit == "epoch" else 1
        return o.estimate(self.setting, k // spe - o.steps)

    def observe(self, metrics: dict) -> None:
        return None  # the run core steps a plateau scheduler with its metric

    def describe(self) -> str:
        return self.owner.describe()
