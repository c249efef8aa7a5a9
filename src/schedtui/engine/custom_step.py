"""A factory's own training step: `Experiment(train_step=fn, eval_step=fn, manual=False)`.

`train_step(model, batch, ctx)` returns the loss (a scalar tensor), or a dict of
named terms with `"loss"` the one to backpropagate (every term is logged and
charted). The built-in loop still does what is around it: zero_grad, backward
(fp16 loss scaling where asked), gradient clipping at the `grad_clip` knob, the
optimizer step — with a closure that runs `train_step` again when the optimizer
needs one (LBFGS; the loss the log records is the first evaluation's, the one
`optimizer.step(closure)` returns) — autocast, and the step boundary. With
`manual=True` the step does its own backward and optimizer steps (a GAN's two
updates, with `ctx.optimizers`), and returns what to log.

`ctx` (a `StepContext`) is the same object for every batch of the run: `epoch`,
`batch` (its index in the epoch), `step` (updates done), `optimizer` /
`optimizers` (name -> optimizer), `device`; anything else the step keeps
between batches (an RNN's hidden state) is an attribute the step sets, and is
saved in checkpoints (tensors and plain values), so rerun and resume are exact.

`eval_step(model, batch, ctx)` returns the loss, or a dict with `"loss"`,
optionally `"acc"`, and other metrics; each is averaged over the validation
batches, weighted by their sizes. Without an `eval_step`, validation runs
`train_step` under `torch.no_grad()` on a context of its own (its loss and terms).
Wrong return values are one-line errors naming what was expected. torch only;
no textual/rich.
"""

from __future__ import annotations

import math

import torch

from schedtui.engine.user_data import batch_size_of
from schedtui.errors import UserError

_OWN = ("epoch", "batch", "step", "optimizer", "optimizers", "device", "training")


class StepContext:
    def __init__(self, optimizers: dict, device, training: bool = True):
        self.optimizers = optimizers
        self.optimizer = next(iter(optimizers.values())) if len(optimizers) == 1 else None
        self.device, self.training = device, training
        self.epoch = self.batch = self.step = 0

    def state_dict(self) -> dict:
        """What the step keeps between batches (its own attributes), for checkpoints."""
        return {k: v for k, v in vars(self).items() if k not in _OWN}

    def load_state_dict(self, state: dict) -> None:
        for k in [k for k in vars(self) if k not in _OWN]:
            delattr(self, k)
        for k, v in state.items():
            setattr(self, k, v)


def split_loss(out, where: str = "train_step", backward: bool = True):
    """(the tensor to backpropagate or None, the row [total, term...] to log, the terms' names or None)."""
    if isinstance(out, dict):
        if "loss" not in out:
            raise UserError(f"{where} returned a dict without 'loss' (the one to backpropagate); keys: {', '.join(map(str, out))}")
        total = _scalar(out["loss"], f"{where}: loss", backward)
        names, parts = [], [total.detach().float().reshape(1) if isinstance(total, torch.Tensor) else None]
        for k, v in out.items():
            if k == "loss":
                continue
            if not isinstance(k, str):
                raise UserError(f"{where}: term names must be strings, got {k!r}")
            names.append(k)
            parts.append(_scalar(v, f"{where}: {k}", False))
        return total, _row(total, parts[1:]), tuple(names) or None
    total = _scalar(out, f"{where}", backward)
    return total, _row(total, []), None


def _scalar(v, what: str, needs_tensor: bool):
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise UserError(f"{what} must be a scalar (one value), got a tensor of shape {tuple(v.shape)}")
        if needs_tensor and not v.requires_grad:
            raise UserError(f"{what} has no gradient to backpropagate (computed without the model, or under no_grad?)")
        return v
    if needs_tensor:
        raise UserError(f"{what} must be a scalar tensor to backpropagate, got {type(v).__name__}")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise UserError(f"{what} must be a tensor or a number, got {type(v).__name__}")
    return float(v)


def _row(total, terms: list):
    if isinstance(total, torch.Tensor):
        dev = total.device
        return torch.cat([total.detach().float().reshape(1)] + [
            t.detach().float().reshape(1).to(dev) if isinstance(t, torch.Tensor)
            else torch.tensor([t], dtype=torch.float64, device=dev) for t in terms])
    return (float(total), *[float(t) for t in terms])


def needs_closure(optimizer) -> bool:
    """Whether `optimizer.step` needs a closure (LBFGS re-evaluates the loss)."""
    import inspect

    p = inspect.signature(type(optimizer).step).parameters.get("closure")
    return p is not None and p.default is inspect.Parameter.empty


def evaluate_custom(model, loader, fn, ctx: StepContext, amp_dtype=None, reduce=None) -> tuple[float, float, dict]:
    """(mean loss, mean acc or NaN, other metrics' means) of `fn(model, batch, ctx)` over `loader`; `reduce(t)`
    sums a tensor over a data-parallel job's ranks in place."""
    was = model.training
    model.eval()
    sums: dict = {}
    n = 0
    try:
        with torch.no_grad():
            for i, batch in enumerate(loader):
                ctx.batch = i
                if amp_dtype is None:
                    out = fn(model, batch, ctx)
                else:
                    with torch.autocast(ctx.device.type, dtype=amp_dtype):
                        out = fn(model, batch, ctx)
                out = out if isinstance(out, dict) else {"loss": out}
                if "loss" not in out:
                    raise UserError(f"eval_step returned a dict without 'loss'; keys: {', '.join(map(str, out))}")
                size = batch_size_of(batch) or 1
                for k, v in out.items():
                    v = _scalar(v, f"eval_step: {k}", False)
                    v = v.detach().float().reshape(()) if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.float64)
                    sums[k] = sums[k] + v * size if k in sums else v * size
                n += size
    finally:
        model.train(was)
    if reduce is not None:  # every rank must hand the same names: agree on them first
        from schedtui.engine import ddp

        names = sorted(set().union(*ddp.current().gather(sorted(sums))))
        dev = ctx.device
        row = torch.stack([sums.get(k, torch.zeros((), device=dev)).double().to(dev) for k in names]
                          + [torch.tensor(float(n), dtype=torch.float64, device=dev)])
        row = reduce(row).tolist()
        n = row[-1]
        sums_list = row[:-1]
        if n == 0:
            return math.nan, math.nan, {}
        means = {k: v / n for k, v in zip(names, sums_list)}
        loss, acc = means.pop("loss", math.nan), means.pop("acc", math.nan)
        return loss, acc, means
    if n == 0:
        return math.nan, math.nan, {}
    names = list(sums)
    dev = next(v.device for v in sums.values())
    values = torch.stack([sums[k].double().to(dev) for k in names]).tolist()  # one host-device sync per evaluation
    means = {k: v / n for k, v in zip(names, values)}
    loss, acc = means.pop("loss"), means.pop("acc", math.nan)
    return loss, acc, means
