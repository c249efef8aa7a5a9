"""Early stopping: stop when a metric has not improved for `patience` evaluations, and restore the best weights.

`EarlyStopping(cfg, model)` watches `metric` (val_loss and train_loss down, val_acc
up) at every epoch's evaluation. An improvement is a change by more than
`min_delta` in the right direction; it resets the count and (with `restore_best`)
keeps a copy of the weights on the model's device (no host-device sync). When the
count reaches the `patience` knob's value of the moment (it can be edited while
the run goes), `observe` returns the `early_stop` event's fields and the engine
stops; `restore` puts the best weights back. State round-trips via `state_dict`.
torch only; must not import textual/rich.
"""

from __future__ import annotations

import math

import torch

from schedtui.engine.knobs import Holder, Knob
from schedtui.schedule.bounds import NONNEGATIVE


class EarlyStopping:
    def __init__(self, cfg: dict, model: torch.nn.Module):
        self.model = model
        self.metric, self.min_delta, self.restore_best = cfg["metric"], cfg["min_delta"], cfg["restore_best"]
        self.patience = Holder(float(cfg["patience"]))
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad = 0  # evaluations since the last improvement
        self._weights: dict | None = None

    def knobs(self) -> tuple[dict[str, Knob], dict[str, float]]:
        p = self.patience
        knob = Knob("patience", lambda: p.value, lambda v: setattr(p, "value", v), NONNEGATIVE,
                    f"evaluations without {self.metric} improving before the run stops")
        return {"patience": knob}, {"patience": p.value}

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.metric.endswith("acc"):
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def observe(self, metrics: dict, step: int) -> dict | None:
        """After an evaluation: the early_stop event's fields when the run should stop, else None."""
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            self.bad += 1
        elif self._improved(value):
            self.best, self.best_step, self.bad = value, step, 0
            if self.restore_best:
                self._weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            return None
        else:
            self.bad += 1
        patience = math.floor(self.patience.value)
        if self.bad < patience:  # as Keras and Lightning count: 0 and 1 both stop at the first miss
            return None
        return {"metric": self.metric, "best": self.best, "best_step": self.best_step, "patience": patience,
                "evaluations_without_improvement": self.bad, "restored": self.restore_best and self._weights is not None}

    def restore(self) -> None:
        """Put the best weights back (with restore_best)."""
        if self.restore_best and self._weights is not None:
            self.model.load_state_dict(self._weights)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_step": self.best_step, "bad": self.bad, "patience": self.patience.value,
                "weights": self._weights}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_step, self.bad = state["best"], state["best_step"], state["bad"]
        self.patience.value, self._weights = state["patience"], state["weights"]
