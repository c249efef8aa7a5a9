"""The training loss: a weighted sum of named terms whose weights are knobs (`loss@NAME`).

Terms: `task` (cross-entropy with label smoothing, or BCE with smoothed targets
for a binary task), `l1` / `l2` (sum of |w| / half the sum of w^2 over weight
matrices and kernels), `confidence` (minus the mean entropy of the predictions, a
confidence penalty), `logit_norm` (mean squared logit). A term whose weight is 0
is not computed. Returns the total and every term on the device: no host sync.
torch only; must not import textual/rich.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from schedtui.errors import UserError


class WeightedLoss:
    def __init__(self, model: nn.Module, task: str, weights: dict, label_smoothing: float):
        self.task = task  # "binary" | "multiclass"
        self.weights = dict(weights)  # knob-controlled; read every step
        self.label_smoothing = label_smoothing  # knob-controlled
        self.names = list(weights)
        self._matrices = [p for p in model.parameters() if p.dim() > 1]

    def task_loss(self, logits: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
        if logits.dtype is not torch.float32:  # (a conversion that changes nothing still costs a dispatch)
            logits = logits.float()
        if self.task == "binary":
            target = y if y.dtype is torch.float32 else y.float()
            if smoothing != 0.0:
                target = target * (1.0 - smoothing) + 0.5 * smoothing
            return F.binary_cross_entropy_with_logits(logits.reshape(-1), target)
        return F.cross_entropy(logits, y, label_smoothing=smoothing)

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, its row) for one batch: the row is [total, term...] detached, or the detached 0-d total
        alone when there is one term (`steps.StepRecorder` takes both).

        The common case (the task term alone, or any single term) skips what cannot change a value:
        a product by a weight of exactly 1, the stack of a total with itself, conversions to the dtype
        a tensor already has (every op is a few microseconds that a small model's step notices:
        benchmarks/overhead.py)."""
        if len(self.names) == 1:  # always one value a step, whatever the weight (the engine stacks them)
            w = self.weights[self.names[0]]
            if w == 0.0:
                total = (logits * 0.0).sum()
            else:
                term = self._term(self.names[0], logits, y)
                total = term if w == 1.0 else w * term
            return total, (total if total.dtype is torch.float32 else total.float()).detach()
        parts = []
        total = None
        for name in self.names:
            w = self.weights[name]
            if w == 0.0:
                parts.append(torch.zeros((), device=logits.device))
                continue
            term = self._term(name, logits, y)
            parts.append(term.detach())
            total = w * term if total is None else total + w * term
        if total is None:  # every weight is 0: nothing to learn from, but the step still runs (as above)
            total = (logits * 0.0).sum()
        return total, torch.stack([total.detach().float()] + [p.float() for p in parts])

    def _term(self, name: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if name == "task":
            return self.task_loss(logits, y, self.label_smoothing)
        if name == "l1":
            return sum(p.abs().sum() for p in self._matrices)
        if name == "l2":
            return 0.5 * sum(p.pow(2).sum() for p in self._matrices)
        if name == "confidence":
            lf = logits.float()
            if self.task == "binary":
                p = torch.sigmoid(lf.reshape(-1))
                ent = -(p * F.logsigmoid(lf.reshape(-1)) + (1 - p) * F.logsigmoid(-lf.reshape(-1)))
            else:
                ent = -(F.softmax(lf, -1) * F.log_softmax(lf, -1)).sum(-1)
            return -ent.mean()
        if name == "logit_norm":
            return logits.float().pow(2).mean()
        raise ValueError(f"unknown loss term {name!r}")


class UserLoss:
    """A factory's loss function `fn(output, target) -> scalar tensor`, shaped like `WeightedLoss` for the engine.

    It has no label smoothing or loss terms of its own (steer its weights with custom knobs)."""

    task = "custom"
    names = ["loss"]

    def __init__(self, fn):
        self.fn = fn

    def task_loss(self, output: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
        total = self.fn(output, y)
        if not isinstance(total, torch.Tensor) or total.numel() != 1:
            got = f"a tensor of shape {tuple(total.shape)}" if isinstance(total, torch.Tensor) else type(total).__name__
            raise UserError(f"the experiment's loss must return a scalar tensor, got {got}")
        return total.reshape(())

    def __call__(self, output: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = self.task_loss(output, y)
        return total, total.detach().float().reshape(1)
