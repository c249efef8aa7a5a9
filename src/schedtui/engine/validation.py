"""A run's evaluations: the raw model, the averaged models (SWA, EMA), the best so far, and early stopping.

`Validation(core, evaluate, bn_data)` belongs to one run core (`engine.core`) and
uses only its public API (`emit`, `parts`, `step`, `stopping`, `end_reason`).
`evaluate(model) -> (loss, acc, extra metrics)` runs the driver's validation
(None: the driver hands its metrics to `end_epoch`, which `record`s them).

- `raw(reason)`: evaluate the training model; an `eval` event with model "raw".
- `averaged(reason, only=None)`: the SWA model (its BatchNorm statistics
  recomputed first with `update_bn` on `bn_data`) and the EMA model, each an
  `eval` event with its own model name: they never count as the run's best.
- `best`: the raw model's best evaluation — the one early stopping keeps when it
  watches a validation metric (its own rule: min_delta, an earlier tie wins; so
  the `end` event agrees with `early_stop.best`), else the best by accuracy where
  there is one, else by loss — as the `end` event's `best_metric`,
  `best_val_acc`, `best_val_loss`, `best_step`.
- `early_stop(metrics)`: when early stopping says stop, the best weights come
  back, an `early_stop` event says why, the core stops at the next boundary with
  that reason, and the restored model is evaluated once more (`reason:
  "restored_best"`): the run ends with the model it reports.
torch only through the core's parts; no textual/rich.
"""

from __future__ import annotations

import math


class Validation:
    def __init__(self, core, evaluate=None, bn_data=None):
        self.core, self.evaluate, self.bn_data = core, evaluate, bn_data
        self.best: dict = {}
        self._last_raw: dict | None = None  # the latest raw evaluation, for early stopping's best
        es = core.parts.cfg.get("early_stopping")
        self._es_metric = es["metric"] if es and es["metric"] in ("val_loss", "val_acc") else None

    def raw(self, reason: str) -> dict:
        loss, acc, extra = self.evaluate(self.core.parts.model)
        return self.record("raw", loss, acc, reason, extra)

    def record(self, model: str, loss: float, acc: float, reason: str, extra: dict | None, **more) -> dict:
        if model == "raw" and reason != "restored_best":
            self._last_raw = {"best_val_acc": acc, "best_val_loss": loss, "best_step": self.core.step}
            if self._es_metric is None:  # else early stopping's own rule picks the best (see early_stop)
                self._update_best(loss, acc)
        return self.core.emit("eval", split="val", model=model, loss=loss, acc=acc, reason=reason, **more,
                              **({"metrics": extra} if extra else {}))

    def _update_best(self, loss: float, acc: float) -> None:
        metric = self.best.get("best_metric")
        if metric is None:
            if math.isfinite(acc):
                metric = "val_acc"
            elif math.isfinite(loss):
                metric = "val_loss"
            else:
                return
        value = acc if metric == "val_acc" else loss
        if not math.isfinite(value):
            return
        held = self.best.get("best_" + metric)
        if held is None or (value >= held if metric == "val_acc" else value < held):
            self.best = {"best_metric": metric, "best_val_acc": acc, "best_val_loss": loss, "best_step": self.core.step}

    def averaged(self, reason: str, only: str | None = None) -> None:
        avg = self.core.parts.averaging
        if self.evaluate is None or avg is None:
            return
        for name, model in avg.models().items():
            if only and name != only:
                continue
            bn = name == "swa" and reason != "update_bn" and self.bn_data is not None and avg.update_bn(self.bn_data)
            loss, acc, extra = self.evaluate(model)
            self.record(name, loss, acc, reason, extra, **({"bn_updated": True} if bn or reason == "update_bn" else {}))

    def early_stop(self, metrics: dict) -> None:
        core = self.core
        es = core.parts.early_stop
        if es is None:
            return
        fields = es.observe(metrics, core.step)
        if self._es_metric is not None and es.best_step == core.step and self._last_raw is not None:
            self.best = {"best_metric": self._es_metric, **self._last_raw}  # what early stopping keeps (and restores)
        if fields is None:
            return
        es.restore()
        core.emit("early_stop", **fields)
        core.stopping = "stopped"
        core.end_reason = (f"early stopping: {fields['metric']} did not improve for "
                           f"{fields['evaluations_without_improvement']} evaluations; best {fields['best']:.4g} at step "
                           f"{fields['best_step']}" + (", best weights restored" if fields["restored"] else ""))
        if fields["restored"] and self.evaluate is not None:  # what the run ends with is the best model: say so
            self.raw("restored_best")
