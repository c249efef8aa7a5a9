"""What the framework adapters share (`schedtui.lightning`, `schedtui.hf`): one run of a framework's training.

An adapter builds a `FrameworkRun` when its framework starts training, from
what the framework holds: the model, its one optimizer, the scheduler the
framework steps (adopted with `engine.adopted.observe_scheduler`: the framework
keeps stepping it; an edit overrides it from its step; revert goes back to it),
and the planned length. The run is an own-loop `Monitor` (`schedtui.own_loop`)
driven by the framework's hooks, so it holds no copy of the run core's logic:

- every optimizer update is seen by a step post-hook on the optimizer (so
  gradient accumulation, a closure, or a manual loop with several updates per
  batch each count once); the hook calls the core's `after_update` with the
  loss the adapter collected for that update (`take_loss()`) and the samples it
  saw. The knob values it logs are read right before the update (Monitor's
  pre-hook), before the framework steps its scheduler.
- `boundary()` where the adapter's framework has finished an update, its
  scheduler stepped (Lightning's batch end, the Trainer's step end): commands
  and planned edits apply there, seeing the values of the next update; a pause
  waits there, on the training thread. True when the run is to stop: the
  adapter tells its framework (`stop_requested` stays set).
- `epoch(metrics)` at an epoch's end (validation metrics: `val_loss`,
  `val_acc` and any other number); True when the run is to stop.
- `close(error=None)` once: the hooks removed, the scheduler released, and the
  log's `end`: `crashed` with an error, `interrupted` for a KeyboardInterrupt,
  `stopped` when schedtui or the framework stopped before the planned updates
  (the reason says which), else `completed`. No checkpoint is written (the
  framework keeps its own), as for any own loop.

The screen: `screen="auto"` (the default) opens the live screen on a terminal,
in a child process attached to the run (`schedtui.monitor`'s: the training keeps
its process and thread; what it prints goes to RUN_DIR/output.log);
`screen="headless"` (and any run without a terminal) prints an epoch line each
on stderr like `with schedtui.monitor(...)` (tqdm progress bars, such as the
Trainer's, are cleared while it prints and drawn again after: tqdm's
`external_write_mode`). A
non-finite loss warns rather than pauses unless `config` says otherwise (the
framework has already applied that update, and no screen is there to resume a
pause). torch is imported by what this imports; no textual.
"""

from __future__ import annotations

import math
import re
import sys
from contextlib import nullcontext
from pathlib import Path

from schedtui.errors import UserError
from schedtui.knob import Knob

SCREENS = ("auto", "headless")  # auto: the live screen on a terminal, attached from a child process


def check_options(who: str, runs_dir, name, schedules, knobs, config, screen) -> dict:
    """A Steer's arguments, checked (one-line UserError naming what was expected)."""
    if not isinstance(runs_dir, (str, Path)):
        raise UserError(f"{who}: runs_dir must be a directory path, got {type(runs_dir).__name__}")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"{who}: name must be letters, digits, . _ - (it names the run's directory), got {name!r}")
    if schedules is not None and not isinstance(schedules, dict):
        raise UserError(f"{who}: schedules must be a dict of knob -> schedule table, got {type(schedules).__name__}")
    knobs = list(knobs) if isinstance(knobs, (list, tuple)) else knobs
    if not isinstance(knobs, list) or not all(isinstance(k, Knob) for k in knobs):
        raise UserError(f"{who}: knobs must be a list of schedtui.Knob(name, get, set, bounds)")
    if config is not None and not isinstance(config, dict):
        raise UserError(f"{who}: config must be a dict of preset settings, got {type(config).__name__}")
    if screen not in SCREENS:
        raise UserError(f"{who}: screen must be one of {', '.join(map(repr, SCREENS))}, got {screen!r}")
    config = dict(config or {})
    engine = config.get("engine", {})
    if isinstance(engine, dict):  # no screen to resume a pause: a non-finite loss warns (unless config says)
        config["engine"] = {"on_nonfinite": "warn", **engine}
    from schedtui.config.load import resolve
    from schedtui.experiment import OWN_LOOP

    # what can be checked before the training starts is checked now (knob names need the model: at its start)
    resolve({**config, "name": name, "epochs": 1, "experiment": OWN_LOOP, "schedules": schedules or {}}, name=name)
    return {"runs_dir": runs_dir, "name": name, "schedules": schedules, "knobs": knobs, "config": config,
            "screen": screen}


def batch_size(obj) -> int | None:
    """The length of the first tensor with a batch dimension in a batch (a tensor, tuple, list or dict)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return int(obj.shape[0]) if obj.dim() > 0 else None
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    for item in items:
        n = batch_size(item)
        if n is not None:
            return n
    return None


def plan(who: str, updates, steps_per_epoch) -> tuple[int, int]:
    """(epochs, steps per epoch) covering `updates` planned optimizer updates (those left, when the framework
    resumed from a checkpoint of its own: the log counts from there)."""
    if not isinstance(updates, (int, float)) or not math.isfinite(updates):
        raise UserError(f"{who}: the training has no finite length: give it a number of epochs or of steps")
    if updates < 1:
        raise UserError(f"{who}: the training has no update left to run ({updates} planned)")
    if not isinstance(steps_per_epoch, (int, float)) or not math.isfinite(steps_per_epoch) or steps_per_epoch < 1:
        steps_per_epoch = updates  # a dataloader without a length: one "epoch" of all the planned updates
    spe = int(steps_per_epoch)
    return max(1, math.ceil(int(updates) / spe)), spe


def bars_aside():
    """While schedtui prints: tqdm's bars (if tqdm is in use) cleared, and drawn again after."""
    tqdm = sys.modules.get("tqdm.std")
    if tqdm is None:
        return nullcontext()
    return tqdm.tqdm.external_write_mode(file=sys.stderr, nolock=True)  # no lock held while a pause waits


class FrameworkRun:
    def __init__(self, framework: str, header: dict, model, optimizer, *, scheduler, epochs: int, steps_per_epoch: int,
                 planned: int, options: dict, take_loss, no_loss: str):
        """`take_loss()`: the loss of the update that just happened (a scalar tensor or a float; None: none seen);
        `no_loss`: what to tell the user when it has none."""
        from schedtui.own_loop import Monitor

        self.framework, self.planned = framework, planned
        self.optimizer, self.scheduler = optimizer, scheduler
        self._take_loss, self._no_loss = take_loss, no_loss
        self.mon = Monitor(model, optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch,
                           schedules=options["schedules"], knobs=options["knobs"], config=options["config"],
                           name=options["name"], runs_dir=options["runs_dir"], scheduler=scheduler, header=header,
                           screen=options["screen"])
        self.screen = options["screen"]
        self.samples = 0
        self.stop_requested = False
        self.closed = False
        self._hook = None

    def open(self) -> None:
        with bars_aside():
            self.mon.__enter__()
        if self.scheduler is not None:
            self.scheduler.observe(self.mon.core.scheduler_stepped)
        self._hook = self.optimizer.register_step_post_hook(self._updated)

    @property
    def run_dir(self) -> Path:
        return self.mon.run_dir

    @property
    def stopping(self) -> bool:
        return self.stop_requested or bool(self.mon.core.stopping)

    def send(self, command: str, /, **args):
        return self.mon.send(command, **args)

    def add_samples(self, n: int | None) -> None:
        self.samples += n or 0

    def _updated(self, optimizer, args, kwargs) -> None:
        """An optimizer update happened (the step post-hook): record it."""
        core = self.mon.core
        if self.closed or core.stopping:  # a run that is stopping records no more updates (as mon.step)
            return
        try:
            loss = self._take_loss()
            if loss is None:
                raise UserError(f"update {core.step + 1} had no loss: {self._no_loss}")
            samples, self.samples = self.samples, 0
            core.after_update(loss, samples or None)
        except BaseException as e:  # the run ends crashed (with why) before the framework sees the error
            self.close(e)
            raise

    def boundary(self) -> bool:
        """Between two updates (see the module docstring); True when the run is to stop."""
        if self.closed:
            return self.stop_requested
        try:
            if self.mon.core.boundary() is not None:
                self.stop_requested = True
        except BaseException as e:  # Ctrl-C while paused: the run ends interrupted
            self.close(e)
            raise
        return self.stop_requested

    def epoch(self, metrics: dict) -> bool:
        """An epoch ended with these metrics; True when the run is to stop."""
        from schedtui.own_loop import StopRun

        if self.closed or self.stopping:
            return self.stopping  # an epoch cut short by a stop is not one the log counts
        try:
            with bars_aside():
                self.mon.epoch(**metrics)
        except StopRun:
            self.stop_requested = True
        except BaseException as e:
            self.close(e)
            raise
        return self.stop_requested

    def close(self, error: BaseException | None = None, why_early: str = "") -> str:
        """End the run once (see the module docstring); returns its status."""
        if self.closed:
            return self.mon.status
        self.closed = True
        if self._hook is not None:
            self._hook.remove()
        if self.scheduler is not None:
            self.scheduler.release()
        core = self.mon.core
        if core is None:
            return "ready"
        if error is None and not core.stopping and core.step < self.planned:
            core.commands.stop("stopped")
            core.end_reason = (f"{self.framework} ended the training after {core.step} of {self.planned} updates"
                               f"{' (' + why_early + ')' if why_early else ''}")
        with bars_aside():
            self.mon.__exit__(type(error) if error is not None else None, error,
                              error.__traceback__ if error is not None else None)
        return self.mon.status
