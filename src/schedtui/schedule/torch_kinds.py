"""Schedule kinds named after `torch.optim.lr_scheduler` classes, for any knob.

The value is produced by torch's own class, stepping a throw-away optimizer whose
single parameter group starts at the knob's value: so a knob driven by
`OneCycleLR` gets exactly what `OneCycleLR` gives an lr, step for step (chainable
form, as `scheduler.step()` without arguments). One torch step per `unit`
(optimizer update or epoch). Values are cached in a float array as they are
produced (8 bytes a step), so any earlier step can be asked again. The training run asks `value(k)` for the next
step only; a step-unit schedule is stepped a few dozen steps ahead at a time (the same
values: the throw-away optimizer depends on nothing else), which is cheaper than a
torch step between every two updates. Range checks, edit previews and next-change lookups ask `estimate(k)`,
which uses torch's closed form for an index not yet stepped and does not enter the
cache, so what the run trains with is always the stepped (chainable) value.

torch is imported only when such a schedule is built. Must not import textual/rich.
`ReduceLROnPlateau` is not a function of time: it steps when a validation metric
is observed (`observe`). `SWALR` comes from `torch.optim.swa_utils` (the SWA
phase: anneal to `swa_lr`, then hold); it has no closed form, so looking ahead
steps it (its anneal is short).
"""

from __future__ import annotations

import inspect
import warnings
from array import array

from schedtui.schedule.timing import Timing

TORCH_KINDS = (
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "CyclicLR",
    "LinearLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SWALR",
)
_NOT_ARGS = {"optimizer", "last_epoch", "scale_fn", "verbose"}
PLATEAU_METRICS = ("val_loss", "val_acc", "train_loss")
_AHEAD = 63  # a step-unit schedule is stepped this many updates ahead of what is asked, in one go


def _torch_class(kind: str):
    from torch.optim import lr_scheduler, swa_utils

    return getattr(swa_utils if kind == "SWALR" else lr_scheduler, kind)


def torch_arg_names(kind: str) -> list[str]:
    params = inspect.signature(_torch_class(kind)).parameters
    return [p for p in params if p not in _NOT_ARGS]


def _dummy_optimizer(start: float):
    import torch

    # momentum so that OneCycleLR/CyclicLR's default cycle_momentum has something to cycle;
    # that cycling stays inside this throw-away optimizer (give `momentum` its own schedule).
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=start, momentum=0.9)


def _make(kind: str, start: float, args: dict):
    opt = _dummy_optimizer(start)
    sched = _torch_class(kind)(opt, **args)
    opt.step()  # no gradients: changes nothing, but marks the optimizer as stepped for torch's order check
    return opt, sched


class TorchSchedule:
    """A time-driven torch scheduler class, evaluated lazily and cached."""

    def __init__(self, kind: str, args: dict, start: float, unit: str, timing: Timing):
        self.kind, self.args, self.start, self.unit, self.timing = kind, dict(args), start, unit, timing
        self._opt, self._sched = _make(kind, start, self.args)
        self._values = array("d", [self._opt.param_groups[0]["lr"]])
        self._exhausted = False
        self._probe_opt = self._probe_sched = None

    def value(self, k: int) -> float:
        i = self._index(k)
        if i >= len(self._values):
            self._advance(i + 1 - len(self._values) + (_AHEAD if self.unit == "step" else 0))
        return self._values[i]

    def hold(self, k: int) -> int | None:
        """Steps from k with the same value: the rest of the epoch for an epoch-unit schedule."""
        if self.unit == "step":
            return None
        spe = self.timing.steps_per_epoch
        return spe - k % spe

    def estimate(self, k: int) -> float:
        """The value at k without stepping there: cached if known, else torch's closed form."""
        i = self._index(k)
        if i < len(self._values):
            return self._values[i]
        probed = self._probe(i)
        return self.value(k) if probed is None else probed

    def _index(self, k: int) -> int:
        return k if self.unit == "step" else k // self.timing.steps_per_epoch

    def _probe(self, i: int) -> float | None:
        """torch's closed form at index i (equal to the stepped value up to float rounding), or None."""
        if self.kind == "SWALR":  # recurrent in _step_count: no closed form
            return None
        if self._probe_sched is None:
            self._probe_opt, self._probe_sched = _make(self.kind, self.start, self.args)
        sched = self._probe_sched
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.kind == "CosineAnnealingWarmRestarts":
                    sched.step(i)  # its documented closed form: step(epoch)
                    return self._probe_opt.param_groups[0]["lr"]
                if self.kind == "OneCycleLR":
                    i = min(i, sched.total_steps)  # stepping further raises in torch; the run holds the last value
                sched.last_epoch = i
                closed = getattr(sched, "_get_closed_form_lr", None)  # torch's closed forms (StepLR, Cosine...)
                return float((closed or sched.get_lr)()[0])  # OneCycleLR, CyclicLR: get_lr is a closed form
        except Exception:  # any surprise: fall back to stepping, which is always right
            return None

    def _advance(self, n: int = 1) -> None:
        """Step torch's scheduler n more times (a step-unit schedule runs _AHEAD steps ahead of the run:
        one warnings context and a warm loop for many steps, instead of both on every update)."""
        group, values = self._opt.param_groups[0], self._values
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(n):
                if not self._exhausted:
                    try:
                        self._sched.step()
                    except ValueError:  # OneCycleLR stepped past total_steps: hold its last value
                        self._exhausted = True
                values.append(values[-1] if self._exhausted else group["lr"])

    def observe(self, metrics: dict) -> None:
        return None


class PlateauSchedule:
    """`ReduceLROnPlateau`: steps once per observed validation metric (`metric`, default val_loss)."""

    def __init__(self, args: dict, start: float, metric: str):
        self.kind, self.args, self.start, self.metric, self.unit = "ReduceLROnPlateau", dict(args), start, metric, "epoch"
        self._opt, self._sched = _make("ReduceLROnPlateau", start, self.args)

    def value(self, k: int) -> float:
        return self._opt.param_groups[0]["lr"]

    def hold(self, k: int) -> int:
        return 1 << 62  # moves only when a metric is observed, which forgets every kept value

    def observe(self, metrics: dict) -> None:
        if self.metric in metrics and metrics[self.metric] is not None:
            self._sched.step(metrics[self.metric])

    def state_dict(self) -> dict:
        return self._sched.state_dict() | {"value": self.value(0)}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self._opt.param_groups[0]["lr"] = state.pop("value")
        self._sched.load_state_dict(state)
