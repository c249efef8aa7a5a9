"""Validation: mean task loss (no label smoothing), accuracy, and a factory's metrics over a loader.

Accuracy: one logit per sample is a binary task (logit > 0), several a multiclass
one (argmax); a factory's own loss (task "custom") gets accuracy when the shapes
say classification (integer targets), else none (NaN). `metrics` (name ->
fn(output, target) -> scalar) are averaged over samples into `extra`. One
host-device sync per evaluation (the final read), none per batch. torch only.
"""

from __future__ import annotations

import torch

from schedtui.engine.losses import WeightedLoss


def _hits(task: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    if task == "custom":
        if y.dtype.is_floating_point or y.dim() != 1 or logits.shape[0] != y.shape[0]:
            return None
        task = "binary" if logits.dim() == 1 or logits.shape[-1] == 1 else "multiclass"
    if task == "binary":  # a bool against 0/1 targets of any dtype: no conversions (a dispatch each)
        return ((logits.reshape(-1) > 0) == y.reshape(-1)).sum()
    return (logits.argmax(-1) == y).sum()


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, loss: WeightedLoss, amp_dtype=None, metrics: dict | None = None,
             extra: dict | None = None, reduce=None) -> tuple[float, float]:
    """(mean loss, accuracy) over `loader`; with `metrics`, their means go into `extra`. `reduce(t)` sums a
    tensor over a data-parallel job's ranks in place (each evaluated its share of `loader`)."""
    was_training = model.training
    model.eval()
    total = correct = None
    sums: dict = {}
    n = 0
    no_acc = False
    for xb, yb in loader:
        if amp_dtype is None:  # entering even a disabled autocast costs microseconds a batch
            logits = model(xb)
        else:
            with torch.autocast(xb.device.type, dtype=amp_dtype):
                logits = model(xb)
        batch_loss = loss.task_loss(logits, yb) * yb.shape[0]
        hits = _hits(loss.task, logits, yb)
        no_acc = no_acc or hits is None
        total = batch_loss if total is None else total + batch_loss
        if hits is not None:
            correct = hits if correct is None else correct + hits
        for name, fn in (metrics or {}).items():
            v = torch.as_tensor(fn(logits, yb), device=logits.device).float() * yb.shape[0]
            sums[name] = v if name not in sums else sums[name] + v
        n += yb.shape[0]
    model.train(was_training)
    if reduce is not None:
        device = next(model.parameters()).device
        zero = torch.zeros((), device=device)
        if n == 0:  # this rank's share was empty: it still takes part in the sum
            total, correct = zero, zero
        names = list(metrics or {})
        acc = correct.float() if correct is not None and not no_acc else torch.full((), float("nan"), device=total.device)
        row = torch.stack([total.double(), acc.double(), *[sums.get(k, zero).double() for k in names],
                           torch.tensor(float(n), dtype=torch.float64, device=total.device)])
        row = reduce(row).tolist()  # one collective, one host-device sync
        n = row[-1]
        if n == 0:
            return float("nan"), float("nan")
        if extra is not None:
            extra.update({k: v / n for k, v in zip(names, row[2:-1])})
        return row[0] / n, row[1] / n
    if n == 0:
        return float("nan"), float("nan")
    names = list(sums)
    correct = correct if correct is not None and not no_acc else torch.full((), float("nan"), device=total.device)
    row = torch.stack([total.float(), correct.float(), *[sums[k] for k in names]]).tolist()  # one host-device sync
    if extra is not None:
        extra.update({k: v / n for k, v in zip(names, row[2:])})
    return row[0] / n, row[1] / n
