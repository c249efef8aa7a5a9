"""Keep your own training loop: `schedtui.monitor(model, optimizer, ...)` logs it, schedules it and lets a person steer it.

    with schedtui.monitor(model, optimizer, epochs=10, steps_per_epoch=len(loader),
                          schedules={"lr": {"kind": "OneCycleLR", "max_lr": 0.1, "unit": "step"}}) as mon:
        for epoch in range(10):
            for x, y in loader:
                ...; loss.backward(); optimizer.step(); optimizer.zero_grad()
                mon.step(loss)                  # the step boundary: knob values for the next update, edits, pauses
            mon.epoch(val_loss=vl, val_acc=va)  # metrics: plateau schedules, early stopping, the charts

`Monitor` is a driver of the run core (`engine.core.RunCore`) on your thread:
`mon.step(loss, batch_size=None, terms=None)` is `after_update` then `boundary`
(the loss a tensor or a float; `terms` named parts of it, logged and charted),
`mon.epoch(**metrics)` is `end_epoch`. It adopts your run as it is: it never
re-seeds (unless given `seed=`), every knob starts from the value your objects
hold, nothing is written to them unless a schedule or an edit names it, and a
scheduler of yours given as `scheduler=` is stepped by schedtui at the boundary
you say (`scheduler_unit`, per "epoch" by default, per "step" for OneCycleLR and
CyclicLR) and shown as the lr's schedule. The values the log records are read
back from your optimizer right before each `optimizer.step()` (a pre-hook), so a
change your code makes behind schedtui's back is logged as it was, with a
warning. When the run is to stop (q in the UI, early stopping, a planned stop)
`mon.step` raises `StopRun`, which the `with` block absorbs; Ctrl-C ends the run
`interrupted`. Looping past `epochs * steps_per_epoch` updates is an error
naming both. On a terminal the live screen is a child process attached to the
run (`control.loop_screen`): your loop keeps this process, its main thread and
its GIL, and what it prints goes to RUN_DIR/output.log; ctrl+q stops the run,
a detach, a failed screen or a hang-up leaves the loop going. Without a
terminal, an epoch line each. `mon.run(train)` is `with mon: train(mon)`. A
run of your own loop can be replayed, diffed and exported; rerun and resume
need a factory (`schedtui run`). torch is imported here; never textual.
"""

from __future__ import annotations

import sys
from pathlib import Path

from schedtui.errors import UserError
from schedtui.experiment import OWN_LOOP


class StopRun(Exception):
    """Raised by `Monitor.step`/`epoch` when the run is to stop; the `with` block absorbs it."""


class _NoData:
    """The training data of an own loop: schedtui never iterates it."""

    def __init__(self, steps_per_epoch: int, device):
        self._n, self.device = steps_per_epoch, device

    def __len__(self) -> int:
        return self._n


class _LoopLoss:
    task, names = "custom", ["loss"]


class Monitor:
    def __init__(self, model, optimizer, *, epochs: int, steps_per_epoch: int, schedules: dict | None = None,
                 knobs: list = (), config: dict | None = None, name: str = "own-loop", runs_dir: str | Path = "runs",
                 bn_loader=None, seed: int | None = None, scheduler=None, scheduler_unit: str | None = None,
                 scheduler_metric: str | None = None, screen: str = "auto", header: dict | None = None,
                 refresh_hz: float | None = None):
        """`header`: more fields for the log's header (a framework's adapter names the framework that drove it);
        `refresh_hz`: the live screen's frames a second (default: the CLI's)."""
        from schedtui.config.load import resolve

        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
            raise UserError(f"monitor: steps_per_epoch must be a positive int, got {steps_per_epoch!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise UserError(f"monitor: seed must be an int or None (None: your own seeding stays), got {seed!r}")
        table = {**(config or {}), "name": name, "epochs": epochs, "experiment": OWN_LOOP}
        if seed is not None:
            table["seed"] = seed
        if schedules:
            table["schedules"] = {**table.get("schedules", {}), **schedules}
        self.cfg = resolve(table, name=name)
        if seed is None:
            self.cfg["seed"] = None  # the header says so: schedtui did not seed this run
        self._pieces = (model, optimizer, list(knobs), bn_loader, steps_per_epoch, scheduler, scheduler_unit,
                        scheduler_metric)
        self.runs_dir = runs_dir
        self._header = dict(header or {})
        self.core = None
        self.run_dir: Path | None = None
        self._events = None
        self._state = None
        self._console = None
        self._hooks: list = []
        if screen not in ("auto", "headless"):
            raise UserError(f"monitor: screen must be 'auto' (the live screen on a terminal) or 'headless', got {screen!r}")
        self._screen = screen
        self._refresh_hz = _refresh_hz(refresh_hz)
        self._control = self._loop_screen = None

    # ---- the run --------------------------------------------------------------------------------
    def _open(self) -> None:
        import torch

        from schedtui.engine.adopted import adopt_scheduler
        from schedtui.engine.build import assemble, seed_everything
        from schedtui.engine.core import RunCore
        from schedtui.engine.data import DataBundle
        from schedtui.engine.describe import header_fields
        from schedtui.engine.rundir import open_run
        from schedtui.events.state import RunState

        model, optimizer, knobs, bn_loader, spe, scheduler, unit, metric = self._pieces
        several = isinstance(optimizer, dict)
        from torch.nn.parallel import DistributedDataParallel

        if isinstance(model, DistributedDataParallel):  # your loop trains the wrapper; the knobs are the model's
            model = model.module
        if not isinstance(model, torch.nn.Module):
            raise UserError(f"monitor: expected a torch.nn.Module, got {type(model).__name__}")
        for name, opt in (optimizer.items() if several else [("optimizer", optimizer)]):
            if not isinstance(opt, torch.optim.Optimizer):
                raise UserError(f"monitor: {name if several else 'optimizer'}: expected a torch.optim.Optimizer "
                                f"(or a dict of them by name), got {type(opt).__name__}")
        if several and not optimizer:
            raise UserError("monitor: the dict of optimizers is empty")
        if self.cfg["seed"] is not None:
            seed_everything(self.cfg["seed"])
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        train = bn_loader if bn_loader is not None else _NoData(spe, device)
        data = DataBundle(train=train, val=[], input_shape=(), n_classes=0, task="custom", name="own loop")
        owners = optimizer if several else {"": optimizer}
        if several:
            optimizer = {str(k): v for k, v in optimizer.items()}
        owner = next((o for o in owners.values() if getattr(scheduler, "optimizer", None) is o), None)
        if scheduler is not None and owner is None:
            raise UserError("monitor: the scheduler was built on another optimizer than the one(s) given")
        adopted = adopt_scheduler(scheduler, owner, unit, metric, self.cfg) if scheduler is not None else None
        parts = assemble(self.cfg, device, data, model, optimizer, _LoopLoss(), knobs, {}, spe,
                         skip_knobs=("grad_clip",), scheduler=adopted)
        from schedtui.engine import ddp, ddp_run

        dist = ddp.setup(device.type) if ddp.in_torchrun() else None  # under torchrun: one log, commands to all
        header = {**header_fields(parts, own_loop=True), **ddp_run.header_fields(dist), **self._header}
        self.run_dir, log = ddp_run.shared_log(dist, lambda: open_run(self.runs_dir, self.cfg, device, header))
        self.core = core = RunCore(parts, log, self.run_dir, bn_data=bn_loader, checkpoint_at_end=False, dist=dist)
        self._events = log.subscribe()
        self._state = RunState.from_header(log.header)
        self._hooks = [o.register_step_pre_hook(lambda *_: core.update_starting()) for o in owners.values()]
        core.begin()
        core.boundary()

    def step(self, loss, batch_size: int | None = None, terms: dict | None = None) -> None:
        """After your optimizer.step(): record `loss` (a tensor or a float; `terms`: its named parts), apply
        commands and planned edits, set the knobs for the next update."""
        core = self.core
        if core is None:
            raise UserError("monitor: use it as `with schedtui.monitor(...) as mon:` (or mon.run(train))")
        if core.stopping:
            raise StopRun(core.stopping)
        core.after_update(loss, batch_size, terms)
        if core.boundary() is not None:
            raise StopRun(core.stopping)

    def epoch(self, **metrics) -> None:
        """At the end of an epoch: `val_loss`, `val_acc` and any other metrics (numbers) you computed."""
        if self.core is None:
            raise UserError("monitor: use it as `with schedtui.monitor(...) as mon:` (or mon.run(train))")
        self.core.end_epoch(metrics)
        self._print()
        if self.core.boundary() is not None:  # what was sent during the epoch's end applies before the next update
            raise StopRun(self.core.stopping)

    def value(self, knob: str) -> float:
        """A knob's value for the next update (for values your loop reads rather than sets through a Knob)."""
        return self.core.values[knob]

    # ---- what the screen and the CLI see (the same as the built-in loop's Engine) -----------------
    def send(self, command: str, /, **args):
        return self.core.send(command, **args)

    @property
    def status(self) -> str:
        return self.core.status if self.core is not None else "ready"

    @property
    def running(self) -> bool:
        return self.core is not None and self.status in ("running", "paused")

    @property
    def engine(self) -> "Monitor":  # the run handle a test uses (send, status, running)
        return self

    @property
    def log(self):
        return self.core.log

    def _close(self, exc: BaseException | None) -> None:
        core = self.core
        if core is None:
            return
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if exc is None or isinstance(exc, StopRun):
            core.finish()
        elif isinstance(exc, KeyboardInterrupt):
            core.finish("interrupted")
        else:
            core.finish(error=exc)
        self._print()

    def __enter__(self) -> "Monitor":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._close(exc)
        self._end_screen()
        return isinstance(exc, StopRun)

    def start(self) -> "Monitor":
        """Open the run (as `with` does): its log, its control socket (`schedtui attach`/`ctl` from any shell)
        and, on a terminal (`screen="auto"`), the live screen in a child process attached to it, your loop
        keeping this process and its main thread; its output then goes to RUN_DIR/output.log, shown there.
        Without a terminal (or `screen="headless"`) an epoch line each."""
        from rich.console import Console

        from schedtui.launch import serve
        from schedtui.safe_text import visible

        self._open()
        if self.core.dist is None or self.core.dist.main:
            self._control = serve(self.core, self.run_dir)  # the core has what the server asks (send, log, step...)
        terminal = sys.stdin.isatty() and sys.stdout.isatty()
        if self._screen == "auto" and terminal and self._control is not None:
            from schedtui.control.loop_screen import LoopScreen

            self._loop_screen = LoopScreen.open(self.core, self.run_dir, self._refresh_hz)
            return self
        self._console = Console(stderr=True)
        self._console.print(f"schedtui: {visible(self.cfg['name'])}, log {visible(self.run_dir / 'events.jsonl')}",
                            soft_wrap=True, markup=False)
        return self

    def finish(self, error: BaseException | None = None) -> str:
        """End the run (as leaving the `with` block does); with the screen up, wait until it is closed."""
        self._close(error)
        self._end_screen()
        return self.status

    def _end_screen(self) -> None:
        """The run has ended: the screen shows it until it is closed; then the terminal is the loop's."""
        screen, self._loop_screen = self._loop_screen, None
        if screen is not None:
            screen.close(self.status)

    def _print(self) -> None:
        if self._console is None:
            return
        from schedtui.headless import drain

        drain(self, self._events, self._state, None, self._console)

    def run(self, train) -> str:
        """`train(mon)` as the `with` block runs it (the live screen on a terminal, else an epoch line each);
        the run's final status. An exception of `train` ends the run `crashed` and is raised again."""
        with self:
            train(self)
        return self.status


def _refresh_hz(hz) -> float:
    from schedtui.ui import LIVE_REFRESH_HZ

    if hz is None:
        return LIVE_REFRESH_HZ
    if isinstance(hz, bool) or not isinstance(hz, (int, float)) or not 0.5 <= hz <= 60:  # nan fails this too
        raise UserError(f"monitor: refresh_hz must be a number in [0.5, 60], got {hz!r}")
    return float(hz)
