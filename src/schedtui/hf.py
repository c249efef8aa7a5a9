"""The Hugging Face Trainer under schedtui: `Trainer(..., callbacks=[schedtui.hf.Steer()])`.

`Steer` is a `transformers.TrainerCallback` that drives a run of schedtui's run
core (through `schedtui.framework.FrameworkRun`) from the Trainer's events. It
adopts the run as the Trainer set it up, never overwriting it: its optimizer
(the torch optimizer inside accelerate's wrapper; knobs — lr, beta1, weight
decay per parameter group, every dropout of the model — start from their live
values), its lr scheduler (the Trainer keeps stepping it; it is shown as the
lr's schedule, an edit overrides it from its step and revert goes back to it),
and the seed (not touched).

Logged: every optimizer update with the loss the Trainer backpropagated for it
— what its own `loss` log shows with `logging_steps=1`. Callbacks are not
handed the loss, so a forward hook on the model reads `outputs.loss` of each
training forward; like the Trainer, it averages them over the update's
gradient-accumulation micro-batches, or sums them when the model was handed
`num_items_in_batch` (its loss is then already normalised over the whole
update). A model whose outputs hold no loss (a `compute_loss` or
`compute_loss_func` of your own, label smoothing) cannot be steered yet: a
one-line error says so. Evaluation metrics at an epoch's end (`eval_strategy=
"epoch"`) go with that epoch: `eval_loss` as the validation loss,
`eval_accuracy` (or `eval_acc`) as the accuracy, other `eval_*` numbers by
their names; an evaluation during an epoch is reported at its end.

A pause waits after an update; a stop (`steer.send("stop")`, early stopping
from `config`) sets `control.should_training_stop`, and the run ends
`stopped`; the Trainer stopping early itself (its EarlyStoppingCallback) ends
it `stopped` with that reason. The Trainer has no event for an exception: an
error in training ends the run `crashed` when the process exits (with the
error Python reports), or when this Steer starts another training. transformers
and torch are imported here.
"""

from __future__ import annotations

import atexit
import math
import sys
from collections.abc import Mapping
from pathlib import Path

import torch
import transformers

from schedtui.engine.adopted import observe_scheduler
from schedtui.errors import UserError
from schedtui.framework import FrameworkRun, batch_size, check_options, plan

WHO = "schedtui.hf.Steer"
_DROPPED = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch")
_RENAMED = {"eval_loss": "val_loss", "eval_accuracy": "val_acc", "eval_acc": "val_acc"}


class Steer(transformers.TrainerCallback):
    def __init__(self, *, runs_dir: str | Path = "runs", name: str = "transformers", schedules: dict | None = None,
                 knobs: list = (), config: dict | None = None, screen: str = "auto"):
        """`schedules`: knob -> schedule table (as in a preset); `knobs`: more `schedtui.Knob`s; `config`: other
        preset settings (`[[edits]]`, `early_stopping`, `engine`...); the log goes under `runs_dir`."""
        self.options = check_options(WHO, runs_dir, name, schedules, knobs, config, screen)
        self.run: FrameworkRun | None = None
        self._losses: list = []  # (loss, already normalised over the update) of each training forward since the update
        self._hook = None
        self._epoch_due = False  # an epoch ended and its evaluation is about to come
        self._evaluated: dict = {}

    # ---- for your script (and tests): the run of the training under way ----------------------------
    def send(self, command: str, /, **args):
        """Send a command (pause, resume, edit, stop, describe...) to the run; returns a Future."""
        if self.run is None:
            raise UserError(f"{WHO}: no run yet (the training has not started)")
        return self.run.send(command, **args)

    @property
    def run_dir(self) -> Path | None:
        return self.run.run_dir if self.run is not None else None

    # ---- the Trainer's events ----------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None,
                       train_dataloader=None, **kwargs):
        if self.run is not None:
            self._close(RuntimeError("a new training started before this one ended"))
        if args.world_size > 1:
            raise UserError(f"{WHO}: this training runs in {args.world_size} processes; Steer drives one process for "
                            "now (several, under DDP, are coming)")
        if getattr(args, "label_smoothing_factor", 0):
            raise UserError(f"{WHO}: with label_smoothing_factor the Trainer computes the loss outside the model, where "
                            "a callback cannot see it; leave it at 0 to steer this training")
        opt = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper holds the torch optimizer
        if not isinstance(opt, torch.optim.Optimizer) or not isinstance(model, torch.nn.Module):
            raise UserError(f"{WHO}: expected the Trainer's torch model and optimizer, got {type(model).__name__} and "
                            f"{type(optimizer).__name__}")
        sched = None
        if lr_scheduler is not None:  # stepped after every update; a plateau scheduler after each evaluation
            if not isinstance(lr_scheduler, (torch.optim.lr_scheduler.LRScheduler,
                                             torch.optim.lr_scheduler.ReduceLROnPlateau)):
                lr_scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)  # accelerate's wrapper holds it
            plateau = isinstance(lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            watched = args.metric_for_best_model or "loss"
            watched = watched if watched.startswith("eval_") else "eval_" + watched
            sched = observe_scheduler(lr_scheduler, opt, "the Hugging Face Trainer", "epoch" if plateau else "step",
                                      metric=_RENAMED.get(watched, watched))
        ga = max(1, args.gradient_accumulation_steps)
        try:
            per_epoch = math.ceil(len(train_dataloader) / ga)
        except TypeError:  # no length: the Trainer goes by max_steps
            per_epoch = state.max_steps
        start = state.global_step  # above 0 when it resumed from a checkpoint of the Trainer's: the log starts here
        epochs, spe = plan(WHO, state.max_steps - start, per_epoch)
        header = {"driver": "transformers", "framework": {"name": "transformers", "version": transformers.__version__,
                                                          "start_step": start, "start_epoch": int(state.epoch or 0)}}
        self._losses, self._epoch_due, self._evaluated = [], False, {}
        self.run = FrameworkRun(
            "the Hugging Face Trainer", header, model, opt, scheduler=sched, epochs=epochs, steps_per_epoch=spe,
            planned=state.max_steps - start, options=self.options, take_loss=self._take_loss,
            no_loss="the model returned no loss (outputs.loss) in training: a compute_loss or compute_loss_func of "
                    "your own is not visible to a callback")
        self.run.open()
        self._hook = model.register_forward_hook(self._forward, with_kwargs=True)
        atexit.register(self._at_exit)

    def _forward(self, module, args, kwargs, output) -> None:
        """A training forward: keep its loss (on the device) and count its samples."""
        if not module.training or not torch.is_grad_enabled():
            return
        if isinstance(output, Mapping):
            loss = output.get("loss")
        else:
            loss = output[0] if isinstance(output, (tuple, list)) and output else None
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._losses.append((loss.detach(), kwargs.get("num_items_in_batch") is not None))
        self.run.add_samples(batch_size([v for k, v in kwargs.items() if k != "num_items_in_batch"] or list(args)))

    def _take_loss(self):
        losses, self._losses = self._losses, []
        if not losses:
            return None
        n = len(losses)
        total = None
        for loss, normalised in losses:  # as the Trainer does: a per-batch mean is divided by the micro-batches
            part = loss if normalised else loss / n
            total = part if total is None else total + part
        return total

    def on_step_end(self, args, state, control, **kwargs):
        if self.run is not None and self.run.boundary():  # after the update and the Trainer's scheduler step
            control.should_training_stop = True

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self._epoch_due:  # the evaluation that was due did not come
            self._end_epoch(control)

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.run is None or self.run.closed:
            return
        if control.should_evaluate:  # the Trainer evaluates right after this event: the epoch ends with its metrics
            self._epoch_due = True
        else:
            self._end_epoch(control)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.run is None or self.run.closed:
            return
        for k, v in (metrics or {}).items():
            if k not in _DROPPED and isinstance(v, (int, float)) and not isinstance(v, bool):
                self._evaluated[_RENAMED.get(k, k)] = float(v)
        if self._epoch_due:
            self._end_epoch(control)

    def _end_epoch(self, control) -> None:
        metrics, self._evaluated, self._epoch_due = self._evaluated, {}, False
        if self.run.epoch(metrics):
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        if self.run is None or self.run.closed:
            return
        if self._epoch_due:
            self._end_epoch(control)
        self._close(None, "control.should_training_stop: an EarlyStoppingCallback?")

    def _close(self, error, why_early: str = "") -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        atexit.unregister(self._at_exit)
        self.run.close(error, why_early)

    def _at_exit(self) -> None:
        """The process exits while a training is still open: an exception ended it (the Trainer has no event)."""
        if self.run is not None and not self.run.closed:
            error = getattr(sys, "last_value", None)
            self._close(error if isinstance(error, BaseException) else
                        RuntimeError("the training ended without the Trainer's on_train_end (an exception?)"))
