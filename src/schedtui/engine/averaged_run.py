"""The engine's side of SWA, EMA and early stopping: the `swa` command and the hooks around updates and evaluations.

A mixin of `Engine` (engine.py stays the loop and the command path), run on the
engine thread only. `swa` ops: `start` (averaging begins at this step boundary and
the lr enters its SWA phase: an edit of the lr to SWALR, logged as an `edit` with
`by: "swa"`), `stop` (averaging ends, the average is kept), `update_bn`
(recompute the average's BatchNorm statistics, then evaluate it). Each becomes a
`swa` event; averaging updates do too (op `update`). After every epoch's
evaluation of the raw model, the averaged models are evaluated (SWA after an
update_bn), and early stopping looks at the metrics: when it says stop, the best
weights come back, an `early_stop` event says why, and the run ends `stopped`
with that reason. torch only; must not import textual/rich.
"""

from __future__ import annotations

from schedtui.engine.evaluate import evaluate
from schedtui.errors import UserError

SWA_OPS = ("start", "stop", "update_bn")


class AveragedRun:
    """Mixed into Engine: needs `parts`, `step`, `_applied`, `_emit`, `_edit`, `_stop_status`, `_end_reason`."""

    def _cmd_swa(self, op: str) -> dict:
        avg = self.parts.averaging
        if op not in SWA_OPS:
            raise UserError(f"swa: op must be one of {', '.join(SWA_OPS)}, got {op!r}")
        if op == "start":
            saved = avg.state_dict()
            fields = avg.start(self.step)
            try:
                self._edit("lr", "schedule", spec=avg.lr_spec(self._applied["lr"]), by="swa")
            except UserError:
                avg.load_state_dict(saved)
                raise
            ev = self._emit("swa", **fields)
        elif op == "stop":
            ev = self._emit("swa", **avg.stop())
        else:
            if not avg.update_bn(self.parts.data.train):
                raise UserError("swa update_bn: no SWA model with BatchNorm to update (start SWA first)")
            ev = self._emit("swa", op="update_bn")
            self._evaluate_averaged("update_bn", only="swa")
        self.log.flush(wait=False)
        return ev

    def _after_update_averaging(self) -> None:
        fields = self.parts.averaging.after_update(self.step)
        if fields is not None:
            self._emit("swa", **fields)

    def _after_epoch_averaging(self) -> None:
        fields = self.parts.averaging.after_epoch()
        if fields is not None:
            self._emit("swa", **fields)

    def _evaluate_averaged(self, reason: str, only: str | None = None) -> None:
        """Evaluate the averaged models (SWA re-normalised first) and log an `eval` for each."""
        p = self.parts
        for name, model in p.averaging.models().items():
            if only and name != only:
                continue
            bn = name == "swa" and reason != "update_bn" and p.averaging.update_bn(p.data.train)
            extra: dict = {}
            loss, acc = evaluate(model, p.data.val, p.loss, p.amp_dtype, p.metrics, extra)
            self._emit("eval", split="val", model=name, loss=loss, acc=acc, reason=reason,
                       **({"bn_updated": True} if bn or reason == "update_bn" else {}), **({"metrics": extra} if extra else {}))

    def _check_early_stop(self, metrics: dict) -> None:
        es = self.parts.early_stop
        if es is None:
            return
        fields = es.observe(metrics, self.step)
        if fields is None:
            return
        es.restore()
        self._emit("early_stop", **fields)
        self._stop_status = "stopped"
        self._end_reason = (f"early stopping: {fields['metric']} did not improve for {fields['evaluations_without_improvement']}"
                            f" evaluations; best {fields['best']:.4g} at step {fields['best_step']}"
                            + (", best weights restored" if fields["restored"] else ""))
