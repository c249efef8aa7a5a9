"""The built-in training loop: one background thread that owns the model, optimizer and data.

`Engine` is a driver of the run core (`engine.core.RunCore`): it iterates the
data, runs each update (forward, loss, backward, gradient clipping at the
`grad_clip` knob, the optimizer step, fp16 loss scaling where asked) and calls
the core's public step boundary around it; everything else — knob values, edits,
pauses, planned entries, checkpoints, the log — is the core's. Other threads
talk to it only through `send(command, **args)` (the core's channel), which
returns a `concurrent.futures.Future`.

A non-finite loss never reaches the weights: on the CPU, where reading a value
costs no host-device sync, each update's loss is checked before the optimizer
steps; an update whose loss (or gradient norm, when clipping) is not finite is
not applied, the core is told (`nonfinite(..., skipped=True)`) and pauses, stops
or goes on as `engine.on_nonfinite` says. On CUDA the losses are read in batches
(no per-step sync) and the check happens at the read; fp16 runs go through
`GradScaler`, which skips non-finite gradients on the device.

Checkpoints hold this loop's own state too (`state_dict`: the position in the
data, the transform generator mid-epoch, the GradScaler), registered with the
core as its `loop`. The per-step path is kept lean (benchmarks/overhead.py): no
autocast context when autocast is off, no allocation beyond the loss row.
torch only; must not import textual or rich.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import torch

from schedtui.engine import ddp
from schedtui.engine.build import RunParts, nonfinite_check
from schedtui.engine.core import OPS, RunCore, Rerun
from schedtui.engine.custom_step import StepContext, evaluate_custom, needs_closure, split_loss
from schedtui.engine.evaluate import evaluate
from schedtui.engine.steps import total_of
from schedtui.engine.user_data import batch_size_of

__all__ = ["OPS", "Engine", "Rerun"]


class Engine:
    def __init__(self, parts: RunParts, log, run_dir: Path, rerun: Rerun | None = None):
        self.parts = parts
        data = parts.data
        dist = ddp.current()
        reduce = dist.sum_ if dist is not None else None  # each rank evaluates its share of the validation data
        if parts.train_step is not None:
            eval_fn = parts.eval_step or parts.train_step
            eval_ctx = StepContext(parts.optimizers, parts.device, training=False)

            def evaluate_on_val(model):
                return evaluate_custom(model, data.val, eval_fn, eval_ctx, parts.amp_dtype, reduce)
        else:
            def evaluate_on_val(model):
                extra: dict = {}
                loss, acc = evaluate(model, data.val, parts.loss, parts.amp_dtype, parts.metrics, extra, reduce)
                return loss, acc, extra

        bn_data = data.train if parts.train_step is None else None  # update_bn needs (input, target) batches
        self.core = RunCore(parts, log, run_dir, rerun=rerun, evaluate=evaluate_on_val, bn_data=bn_data, dist=dist)
        self._model = parts.ddp_model if parts.ddp_model is not None else parts.model  # what trains
        self.core.loop = self
        if parts.ctx is not None:
            self.core.stateful["step_ctx"] = parts.ctx
        self._autocast = parts.amp_dtype is not None
        self._scaler = torch.amp.GradScaler("cuda") if parts.amp_dtype == torch.float16 else None
        self._check = nonfinite_check(parts.cfg, parts.device, parts.optimizer)  # step | device | read
        self._check_each_step = self._check == "step"  # a read costs no sync on the CPU
        self.core.updates_guarded = self._check == "device"
        self._grads = [q for q in parts.model.parameters() if q.requires_grad]
        self._one = torch.ones(1, device=parts.device)
        self._found = torch.zeros(1, device=parts.device)  # the gradient check's flag: set only by a bad step
        self._found_at = self._found.numpy() if parts.device.type == "cpu" else None  # read without a dispatch
        self._names = tuple(parts.loss.names) if len(parts.loss.names) > 1 else None
        self._position = (0, 0)  # (epoch, batch) of the next batch to train
        self._loader_rng = None  # the transform generator's state to resume mid-epoch with
        self._thread = threading.Thread(target=self._main, name="schedtui-engine", daemon=True)
        self._update = self._choose_update()

    # ---- other threads -----------------------------------------------------------------------
    def start(self) -> "Engine":
        self._thread.start()
        return self

    def send(self, command: str, /, **args):
        """Queue a command for the next step boundary; the future gets the event it produced."""
        return self.core.send(command, **args)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def status(self) -> str:
        return self.core.status

    @property
    def step(self) -> int:
        return self.core.step

    @property
    def epoch(self) -> int:
        return self.core.epoch

    @property
    def run_dir(self) -> Path:
        return self.core.run_dir

    @property
    def log(self):
        return self.core.log

    # ---- checkpoints (the core saves this as its `loop`) -----------------------------------------
    def state_dict(self) -> dict:
        epoch, batch = self._position
        return {"position": {"epoch": epoch, "batch": batch},
                "loader_rng": self.parts.data.train.rng_state() if batch > 0 else None,
                "scaler": self._scaler.state_dict() if self._scaler is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self._position = (state["position"]["epoch"], state["position"]["batch"])
        self._loader_rng = state["loader_rng"]
        if self._scaler is not None and state["scaler"] is not None:
            self._scaler.load_state_dict(state["scaler"])

    # ---- the engine thread -------------------------------------------------------------------
    def _main(self) -> None:
        core = self.core
        try:
            core.begin()
            self._train()
            core.boundary(block=False)
        except Exception as e:  # the run crashed: say so in the log, keep the log readable
            core.finish(error=e)
        else:
            core.finish()

    def _train(self) -> None:
        p, core = self.parts, self.core
        first_epoch, first_batch = self._position
        # every epoch starts in train mode; with the built-in step nothing but the evaluations (which restore it)
        # changes a module's mode, so after the first epoch a model still in train mode is left as it is (a whole
        # `train()` walks every module); a factory's own step may change one, so then it is set every epoch
        each_epoch = p.train_step is not None
        for epoch in range(first_epoch, p.cfg["epochs"]):
            p.data.train.set_epoch(epoch)
            if each_epoch or epoch == first_epoch or not p.model.training:
                p.model.train()
            start = first_batch if epoch == first_epoch else 0
            batches = p.data.train.iter_from(start, self._loader_rng if start else None)
            boundary, update = core.boundary, self._update
            for i in range(start, len(p.data.train)):
                self._position = (epoch, i)  # a checkpoint taken at this boundary resumes here
                if boundary() is not None:
                    return
                update(next(batches))
            self._position = (epoch + 1, 0)
            core.end_epoch()
            if core.stopping is not None:  # stopped after this epoch's end (early stopping): it is complete
                return

    def _choose_update(self):
        p = self.parts
        closure = not isinstance(p.optimizer, dict) and needs_closure(p.optimizer)
        if p.train_step is None:
            return self._update_closure if closure else self._update_default
        if p.manual:
            return self._update_manual
        return self._update_custom_closure if closure else self._update_custom

    def _update_default(self, batch) -> None:  # the hot path: the built-in forward, loss and step
        xb, yb = batch
        self._step_with(self._forward_default, batch, yb.shape[0])

    # ---- the other updates: an optimizer that needs a closure, a factory's own train_step -------------
    def _forward_default(self, batch):
        xb, yb = batch
        p = self.parts
        if self._autocast:
            with torch.autocast(p.device.type, dtype=p.amp_dtype):
                logits = self._model(xb)
        else:
            logits = self._model(xb)
        total, row = p.loss(logits, yb)
        return total, row, self._names

    def _forward_custom(self, batch):
        p, ctx = self.parts, self.parts.ctx
        ctx.epoch, ctx.batch = self._position
        ctx.step = self.core.step
        if self._autocast:
            with torch.autocast(p.device.type, dtype=p.amp_dtype):
                out = p.train_step(self._model, batch, ctx)
        else:
            out = p.train_step(self._model, batch, ctx)
        return split_loss(out, "train_step", backward=not p.manual)

    def _update_custom(self, batch) -> None:
        self._step_with(self._forward_custom, batch, batch_size_of(batch))

    def _update_closure(self, batch) -> None:
        self._step_with_closure(self._forward_default, batch, batch[1].shape[0])

    def _update_custom_closure(self, batch) -> None:
        self._step_with_closure(self._forward_custom, batch, batch_size_of(batch))

    def _update_manual(self, batch) -> None:
        _, row, names = self._forward_custom(batch)  # the step did its own backward and optimizer steps
        self.core.after_update_row(row, names, batch_size_of(batch))

    def _step_with(self, forward, batch, batch_size) -> None:
        """zero_grad, forward, backward, clip, the non-finite check (each step on the CPU, where it costs no
        sync), the optimizer step; a non-finite loss or gradient norm never reaches the weights."""
        p = self.parts
        p.optimizer.zero_grad(set_to_none=True)
        total, row, names = forward(batch)
        clip = p.clip.value
        if self._scaler is not None:
            self._scaler.scale(total).backward()
            if clip > 0:
                self._scaler.unscale_(p.optimizer)
                torch.nn.utils.clip_grad_norm_(p.model.parameters(), clip)
            self._scaler.step(p.optimizer)
            self._scaler.update()
        else:
            total.backward()
            norm = torch.nn.utils.clip_grad_norm_(p.model.parameters(), clip) if clip > 0 else None
            checked = self._checked(row, norm) if self._check_each_step else ()
            if checked is None:
                self.core.nonfinite(self.core.step + 1, total_of(row), skipped=True)
                return
            if self._check == "device":  # no sync: the fused step reads the flag on the device
                bad = ~torch.isfinite(total.detach().float())
                if norm is not None:
                    bad = bad | ~torch.isfinite(norm)
                p.optimizer.found_inf = bad.float().reshape(1)
            p.optimizer.step()  # `checked` is still held here: see _checked
        self.core.after_update_row(row, names, batch_size)

    def _checked(self, row, norm) -> list | None:
        """The tensors checked, when the loss row and every gradient are finite (None when one is not), in one
        fused pass over them (on the CPU, where reading the answer costs no sync): the clipping norm stands for
        the gradients when there is one. Data-parallel, the gradients alone decide: they are the ranks' mean, the
        same everywhere; a rank's loss is not.

        The caller holds the returned list until the optimizer step: a fresh gradient has no Python object
        until one is asked for, and one that is let go is freed, so the step would make each one again
        (about 1 us of a moons update, measured in place: benchmarks/README.md)."""
        if norm is not None:
            tensors = [norm]
        else:
            tensors = [g for q in self._grads if (g := q.grad) is not None]
        if self.core.dist is None:
            tensors.append(row)
        if not tensors:
            return tensors
        found = self._found  # kept at 0 between bad steps: nothing to zero on the way
        torch._amp_foreach_non_finite_check_and_unscale_(tensors, found, self._one)  # x * 1.0: values unchanged
        if (self._found_at[0] if self._found_at is not None else found.item()) == 0.0:
            return tensors
        found.zero_()
        return None

    def _step_with_closure(self, forward, batch, batch_size) -> None:
        """The optimizer re-evaluates the loss (LBFGS): the log records its first evaluation, which step returns.
        A non-finite first loss (on the CPU) leaves no gradient, so the step changes no weight."""
        p = self.parts
        first: list = []

        def closure():
            p.optimizer.zero_grad(set_to_none=True)
            total, row, names = forward(batch)
            if not first:
                first.append((row, names))
                if self._check_each_step and not math.isfinite(total_of(row)):
                    return torch.zeros(())  # no gradient at all: LBFGS returns without a change
            total.backward()
            clip = p.clip.value
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(p.model.parameters(), clip)
            return total

        p.optimizer.step(closure)
        row, names = first[0]
        if self._check_each_step and not math.isfinite(total_of(row)):
            self.core.nonfinite(self.core.step + 1, total_of(row), skipped=True)
            return
        self.core.after_update_row(row, names, batch_size)
