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

A scheduler that a framework steps itself (Lightning, the Hugging Face Trainer)
is adopted with `observe_scheduler(...)` instead: its framework goes on calling
`step()` when it always does (its interval, frequency and plateau metric), and
`observe(on_step)` makes each such call do what `step` above does — put back
what it last wrote, step it, keep what it writes now — then call `on_step()`,
where the run core writes the knobs it drives (an edit's value when one
overrides it: `RunCore.scheduler_stepped`). The run core never steps it itself
(`unit` is None). The call is caught by giving that one instance a subclass of
its own class that overrides `step` (nothing is added to its `__dict__`, so its
`state_dict()` and the framework's checkpoints stay as they were); `release()`
gives it back its class at the run's end. torch only; no textual/rich.
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

    if isinstance(sched, AdoptedScheduler):  # observe_scheduler's: checked there; its framework steps it
        _check_config(sched.sched, cfg)
        return sched
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
    _check_config(sched, cfg)
    return AdoptedScheduler(sched, optimizer, unit, metric if plateau else None)


def _check_config(sched, cfg: dict) -> None:
    for key in ("lr", "momentum", "betas"):
        if key in cfg["schedules"] and (key == "lr" or getattr(sched, "cycle_momentum", False)):
            raise UserError(f"schedules.{key}: your scheduler drives {key}; give one or the other (edits still "
                            "override it while the run goes)")


def observe_scheduler(sched, optimizer, framework: str, cadence: str = "step", every: int = 1,
                      metric: str | None = None) -> "AdoptedScheduler":
    """Adopt a scheduler that `framework` steps itself, every `every` steps or epochs (`cadence`), a plateau
    scheduler on `metric` (its name as the framework gives it; shown only). Pass it to the run as `scheduler=`
    and call `observe(on_step)` once the run core exists."""
    import torch

    plateau = isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if not plateau and not isinstance(sched, torch.optim.lr_scheduler.LRScheduler):
        raise UserError(f"{framework}'s scheduler must be a torch.optim.lr_scheduler object to be adopted, got "
                        f"{type(sched).__name__}")
    if getattr(getattr(sched, "optimizer", None), "param_groups", None) is not optimizer.param_groups:
        raise UserError(f"{framework}'s scheduler drives another optimizer than the one it trains with")
    if cadence not in ("step", "epoch"):
        raise UserError(f"{framework}: a scheduler steps per 'step' or per 'epoch', got {cadence!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise UserError(f"{framework}: a scheduler's frequency must be a positive int, got {every!r}")
    adopted = AdoptedScheduler(sched, optimizer, cadence, metric if plateau else None, every=every)
    adopted.framework, adopted.unit = framework, None  # the run core never steps it: its framework does
    return adopted


class AdoptedScheduler:
    def __init__(self, sched, optimizer, unit: str, metric: str | None, every: int = 1):
        """`unit`: when the run core steps it ("step" | "epoch"; None: its framework steps it, see
        `observe_scheduler`); `every`: it steps once every so many of them."""
        import torch

        self.sched, self.optimizer, self.unit, self.metric = sched, optimizer, unit, metric
        self.cadence, self.every = unit, every  # how often it moves, whoever steps it (for look-ahead)
        self.framework: str | None = None
        self.kind = type(sched).__name__
        self.plateau = isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self._class = type(sched)  # its own class (observe() gives the instance a subclass for the run)
        self._on_step = None
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
        self._put_back()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's order warnings: the boundary is after optimizer.step()
            if self.plateau:
                value = (metrics or {}).get(self.metric)
                if value is None or not math.isfinite(value):
                    return
                self.sched.step(value)
            else:
                self.sched.step()
        self._stepped()

    def _put_back(self) -> None:
        for s, v in self.last.items():
            if self._read(s) != v:
                self._write(s, v)

    def _stepped(self) -> None:
        self.steps += 1
        self.last = {s: self._read(s) for s in self.settings}
        self._ahead = None

    # ---- a scheduler its framework steps (observe_scheduler) ----------------------------------------
    def observe(self, on_step) -> None:
        """From now on each `step()` its framework calls is caught (see the module docstring); `on_step()` after
        each one."""
        if self.unit is not None:
            raise UserError("a scheduler schedtui steps itself cannot also be stepped by a framework")
        if type(self.sched) is not self._class:
            raise UserError(f"{self.kind}: this scheduler is already adopted by another run")
        owner, cls = self, self._class

        def step(sched, *args, **kwargs):
            return owner._framework_step(args, kwargs)

        self._on_step = on_step
        self.sched.__class__ = type(cls.__name__, (cls,), {"step": step, "__module__": cls.__module__,
                                                           "__qualname__": cls.__qualname__})

    def _framework_step(self, args, kwargs):
        self._put_back()  # an edit may have written over it; a chainable scheduler computes from what it finds
        try:
            return self._class.step(self.sched, *args, **kwargs)
        finally:  # even when it raised: what it holds now is kept, and the knobs written again
            self._stepped()
            if self._on_step is not None:
                self._on_step()

    def release(self) -> None:
        """Give the instance back its own class (the run ended); its framework's step() is its own again."""
        if type(self.sched) is not self._class:
            self.sched.__class__ = self._class
        self._on_step = None

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
            clone = copy.deepcopy(self.sched, memo={id(self.optimizer): stand_in, id(self.sched.optimizer): stand_in})
        except Exception:  # a scheduler that cannot be copied: look-ahead holds the current value
            self._ahead = {s: array("d", [v]) for s, v in self.last.items()}
            return
        clone.__class__ = self._class  # an observed scheduler's copy steps as its own class, unobserved
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
        every = f"every {self.every} {self.cadence}s" if self.every > 1 else f"per {self.cadence}"
        by = f"stepped by {self.framework}, " if self.framework else ""
        return f"your {self.kind} ({by}{every}{', on ' + self.metric if self.metric else ''})"

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
        self.unit = owner.cadence

    def value(self, k: int) -> float:
        return self.owner.value(self.setting)

    def hold(self, k: int) -> int:
        return FOREVER  # it moves only when stepped, and the run core forgets kept values then

    def estimate(self, k: int) -> float:
        o = self.owner
        period = (o.steps_per_epoch if o.cadence == "epoch" else 1) * o.every
        return o.estimate(self.setting, k // period - o.steps)

    def observe(self, metrics: dict) -> None:
        return None  # the run core steps a plateau scheduler with its metric

    def describe(self) -> str:
        return self.owner.describe()
