"""Validation: mean task loss (no label smoothing) and accuracy over a loader.

One host-device sync per evaluation (the final read), none per batch. torch only.
"""

from __future__ import annotations

import torch

from schedtui.engine.losses import WeightedLoss


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, loss: WeightedLoss, amp_dtype=None) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    total = correct = None
    n = 0
    for xb, yb in loader:
        with torch.autocast(xb.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(xb)
        batch_loss = loss.task_loss(logits, yb) * yb.shape[0]
        if loss.task == "binary":
            hits = ((logits.reshape(-1) > 0).float() == yb.float()).sum()
        else:
            hits = (logits.argmax(-1) == yb).sum()
        total = batch_loss if total is None else total + batch_loss
        correct = hits if correct is None else correct + hits
        n += yb.shape[0]
    model.train(was_training)
    if n == 0:
        return float("nan"), float("nan")
    val_loss, hits = torch.stack([total.float(), correct.float()]).tolist()  # one host-device sync
    return val_loss / n, hits / n
