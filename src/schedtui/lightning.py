"""PyTorch Lightning under schedtui: `L.Trainer(callbacks=[schedtui.lightning.Steer()])`.

`Steer` is a Lightning callback that drives a run of schedtui's run core
(through `schedtui.framework.FrameworkRun`) from Lightning's hooks. It adopts
the run as Lightning set it up, never overwriting it: the optimizer from
`configure_optimizers` (its knobs — lr, momentum, weight decay per parameter
group, every dropout and BatchNorm momentum of the module — start from their
live values), its scheduler (Lightning keeps stepping it with its interval,
frequency and `monitor` metric; it is shown as the lr's schedule, an edit
overrides it from its step and revert goes back to it), and the seed (not
touched). Logged: every optimizer update with the loss Lightning backpropagated
(`on_before_backward`, summed over gradient-accumulation batches: the mean loss
of the update) and the batch size; at each training epoch's end the metrics in
`trainer.callback_metrics` (`val_loss` and `val_acc` as the validation loss
and accuracy, any other logged number by its name; the validation's metrics
only in an epoch where validation ran; metrics logged in the module's own
`on_train_epoch_end` come after this callback and are not seen). A pause waits
after an update; a stop (`steer.send("stop")`, early stopping from `config`)
sets `trainer.should_stop`, and the run ends `stopped`; Lightning stopping
early itself (its EarlyStopping, `max_time`) ends it `stopped` with that reason;
an exception ends it `crashed`, Ctrl-C `interrupted`. One optimizer for now
(several, as in a GAN, are coming). Lightning's own progress bar redraws its
line in place, which garbles the epoch lines schedtui prints when both reach
one terminal: it is turned off for the fit then (`disable()`, and `enable()`
again at its end), and left alone when either output goes to a file or pipe.
Lightning 2 (`lightning`, or the older `pytorch_lightning`) and torch are
imported here.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import lightning.pytorch as pl
except ImportError:  # the older package name
    import pytorch_lightning as pl

from schedtui.engine.adopted import observe_scheduler
from schedtui.errors import UserError
from schedtui.framework import FrameworkRun, batch_size, check_options, plan

WHO = "schedtui.lightning.Steer"


class Steer(pl.Callback):
    def __init__(self, *, runs_dir: str | Path = "runs", name: str = "lightning", schedules: dict | None = None,
                 knobs: list = (), config: dict | None = None, screen: str = "auto"):
        """`schedules`: knob -> schedule table (as in a preset); `knobs`: more `schedtui.Knob`s; `config`: other
        preset settings (`[[edits]]`, `early_stopping`, `engine`...); the log goes under `runs_dir`."""
        self.options = check_options(WHO, runs_dir, name, schedules, knobs, config, screen)
        self.run: FrameworkRun | None = None
        self._loss = None
        self._validated = False
        self._val_keys: set = set()
        self._before_val: set = set()
        self._bar = None  # Lightning's progress bar, while schedtui turned it off

    # ---- for your script (and tests): the run of the fit under way -------------------------------------
    def send(self, command: str, /, **args):
        """Send a command (pause, resume, edit, stop, describe...) to the run; returns a Future."""
        if self.run is None:
            raise UserError(f"{WHO}: no run yet (the training has not started)")
        return self.run.send(command, **args)

    @property
    def run_dir(self) -> Path | None:
        return self.run.run_dir if self.run is not None else None

    # ---- Lightning's hooks ------------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module) -> None:
        bar = trainer.progress_bar_callback
        if bar is not None and bar.is_enabled and sys.stdout.isatty() and sys.stderr.isatty():
            bar.disable()  # its in-place redraws and schedtui's lines in one terminal garble each other
            self._bar = bar

    def on_fit_end(self, trainer, pl_module) -> None:
        self._give_back_bar()

    def _give_back_bar(self) -> None:
        if self._bar is not None:
            self._bar.enable()
            self._bar = None

    def on_train_start(self, trainer, pl_module) -> None:
        if self.run is not None:
            self.run.close(RuntimeError("a new fit started before this one ended"))
        if trainer.world_size > 1:
            raise UserError(f"{WHO}: this fit runs in {trainer.world_size} processes; Steer drives one process for "
                            "now (several, under DDP, are coming)")
        optimizers = trainer.optimizers
        if len(optimizers) != 1:
            raise UserError(f"{WHO}: this fit has {len(optimizers)} optimizers; Steer drives one for now (several "
                            "optimizers, as in a GAN, are coming)")
        opt = optimizers[0]
        configs = trainer.lr_scheduler_configs
        if len(configs) > 1:
            raise UserError(f"{WHO}: this fit has {len(configs)} lr schedulers; Steer adopts one")
        sched = None
        if configs:
            c = configs[0]
            by = "Lightning" if pl_module.automatic_optimization else "your training_step"
            sched = observe_scheduler(c.scheduler, opt, by, c.interval, c.frequency,
                                      c.monitor if c.reduce_on_plateau else None)
        batches = trainer.num_training_batches
        if pl_module.automatic_optimization:
            updates = trainer.estimated_stepping_batches
            per_epoch = -(-batches // trainer.accumulate_grad_batches) if batches != float("inf") else batches
        else:  # your training_step steps the optimizer: once per batch, as far as schedtui can plan
            per_epoch = batches
            epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else float("inf")
            updates = min(batches * epochs, trainer.max_steps if trainer.max_steps != -1 else float("inf"))
        start = trainer.global_step  # above 0 when the fit resumed from a checkpoint of Lightning's: the log starts here
        updates -= start
        epochs, spe = plan(WHO, updates, per_epoch)
        header = {"driver": "lightning", "framework": {"name": "lightning", "version": pl.__version__,
                                                       "start_step": start, "start_epoch": trainer.current_epoch}}
        self._loss, self._validated, self._val_keys = None, False, set()
        self.run = FrameworkRun(
            "Lightning", header, pl_module, opt, scheduler=sched, epochs=epochs, steps_per_epoch=spe,
            planned=int(updates), options=self.options, take_loss=self._take_loss,
            no_loss="your training_step backpropagated nothing through Lightning (call self.manual_backward(loss))")
        self.run.open()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.run is not None:
            self.run.add_samples(batch_size(batch))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.run is not None and self.run.boundary():  # after the batch's update and Lightning's scheduler step
            trainer.should_stop = True

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if self.run is not None:
            loss = loss.detach()
            self._loss = loss if self._loss is None else self._loss + loss  # on the device: no sync per step

    def _take_loss(self):
        loss, self._loss = self._loss, None
        return loss

    def on_validation_start(self, trainer, pl_module) -> None:
        if self.run is not None and not trainer.sanity_checking:
            self._before_val = set(trainer.callback_metrics)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.run is not None and not trainer.sanity_checking:
            self._val_keys |= set(trainer.callback_metrics) - self._before_val
            self._validated = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.run is None or self.run.closed:
            return
        metrics = {}
        for k, v in trainer.callback_metrics.items():
            if k == "train_loss" or k.endswith("_step") or (not self._validated and k in self._val_keys):
                continue  # schedtui's own train loss is the epoch's mean; a validation's metrics count once
            v = v.item() if hasattr(v, "numel") and v.numel() == 1 else v
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics[k] = float(v)
        self._validated = False
        if self.run.epoch(metrics):
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        if self.run is not None:
            self.run.close(why_early="trainer.should_stop was set: an EarlyStopping or Timer callback?"
                           if trainer.should_stop else "its data ran out, or on_train_batch_start returned -1?")

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._give_back_bar()
        if self.run is not None:
            self.run.close(exception)
