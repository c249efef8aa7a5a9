"""Keep your own training loop: `schedtui.monitor(model, optimizer, ...)` logs it, schedules it and lets a person steer it.

    with schedtui.monitor(model, optimizer, epochs=10, steps_per_epoch=len(loader),
                          schedules={"lr": {"kind": "OneCycleLR", "max_lr": 0.1, "unit": "step"}}) as mon:
        for epoch in range(10):
            for x, y in loader:
                ...; loss.backward(); optimizer.step(); optimizer.zero_grad()
                mon.step(loss)                  # the step boundary: knob values for the next update, edits, pauses
            mon.epoch(val_loss=vl, val_acc=va)  # metrics: plateau schedules, early stopping, the charts

`mon.step` is the engine's step boundary run on your thread: it records the loss
(read in batches; one host-device sync per read on CUDA), applies queued
commands (a pause waits there), and writes the next update's knob values (lr,
momentum, weight decay, dropout, BatchNorm momentum, and your `Knob`s). When the
run is to stop (q in the UI, early stopping, a planned stop) it raises `StopRun`,
which the `with` block absorbs; Ctrl-C ends the run `interrupted`. The log, the
schedules, edits, SWA/EMA (`bn_loader` for update_bn) and early stopping are the
engine's own. The live screen needs the main thread, so `mon.run(train)` runs
`train(mon)` on a worker thread under the UI (headless without a terminal); the
`with` form prints an epoch line each. A run of your own loop can be replayed,
diffed and exported; rerun and resume need a factory (`schedtui run`). torch is
imported here; textual only in `run`.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from pathlib import Path

from schedtui.errors import UserError
from schedtui.experiment import OWN_LOOP


class StopRun(Exception):
    """Raised by `Monitor.step`/`epoch` when the run is to stop; the `with` block absorbs it."""


class _NoData:
    """The training data of an own loop: schedtui never iterates it (update_bn uses `bn_loader`)."""

    def __init__(self, steps_per_epoch: int, device):
        self._n, self.device = steps_per_epoch, device

    def __len__(self) -> int:
        return self._n

    def rng_state(self):
        return None


class _LoopLoss:
    task, names = "custom", ["loss"]


class Monitor:
    def __init__(self, model, optimizer, *, epochs: int, steps_per_epoch: int, schedules: dict | None = None,
                 knobs: list = (), config: dict | None = None, name: str = "own-loop", runs_dir: str | Path = "runs",
                 bn_loader=None):
        from schedtui.config.load import resolve

        if not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
            raise UserError(f"monitor: steps_per_epoch must be a positive int, got {steps_per_epoch!r}")
        table = {**(config or {}), "name": name, "epochs": epochs, "experiment": OWN_LOOP}
        if schedules:
            table["schedules"] = {**table.get("schedules", {}), **schedules}
        self.cfg = resolve(table, name=name)
        self._pieces = (model, optimizer, list(knobs), bn_loader, steps_per_epoch)
        self.runs_dir = runs_dir
        self.engine = None
        self.run_dir: Path | None = None
        self._events = None
        self._state = None
        self._console = None
        self._done = False

    # ---- the run --------------------------------------------------------------------------------
    def _open(self) -> None:
        import torch

        from schedtui.engine.build import assemble, seed_everything
        from schedtui.engine.data import DataBundle
        from schedtui.engine.engine import Engine
        from schedtui.engine.rundir import open_run
        from schedtui.events.state import RunState

        model, optimizer, knobs, bn_loader, spe = self._pieces
        if not isinstance(model, torch.nn.Module) or not isinstance(optimizer, torch.optim.Optimizer):
            raise UserError("monitor: expected a torch.nn.Module and a torch.optim.Optimizer")
        seed_everything(self.cfg["seed"])
        device = next(model.parameters()).device
        for i, g in enumerate(optimizer.param_groups):
            g.setdefault("name", "default" if i == 0 else f"group{i}")
        train = bn_loader if bn_loader is not None else _NoData(spe, device)
        data = DataBundle(train=train, val=[], input_shape=(), n_classes=0, task="custom", name="own loop")
        parts = assemble(self.cfg, device, data, model, optimizer, _LoopLoss(), knobs, {}, spe, skip_knobs=("grad_clip",))
        extra = {"steps_per_epoch": spe, "knobs": {k: parts.schedules.describe(k) for k in parts.knobs}}
        self.run_dir, log = open_run(self.runs_dir, self.cfg, device, extra)
        self.engine = e = Engine(parts, log, self.run_dir)
        self._events = log.subscribe()
        self._state = RunState.from_header(log.header)
        e._t0 = time.monotonic()
        e.status = "running"
        e._apply_knobs()
        e._apply_pending()

    def step(self, loss, batch_size: int | None = None) -> None:
        """After your optimizer.step(): record `loss`, apply commands, set the knobs for the next update."""
        e = self.engine
        if e is None:
            raise UserError("monitor: use it as `with schedtui.monitor(...) as mon:` (or mon.run(train))")
        if e._stop_status:
            raise StopRun(e._stop_status)
        e.step += 1
        e._samples += batch_size or 0
        if e.parts.averaging is not None:
            e._after_update_averaging()
        e._pending.append((e.step, e._applied, loss.detach().float().reshape(1)))
        if len(e._pending) >= e._read_every or e.active_seconds() - e._last_read[0] >= e._flush_interval:
            e._read_losses()
        e._apply_knobs()
        e._apply_pending()
        if e._stop_status:
            raise StopRun(e._stop_status)

    def epoch(self, **metrics) -> None:
        """At the end of an epoch: `val_loss`, `val_acc` and any other metrics (numbers) you computed."""
        e, p = self.engine, self.engine.parts
        e._read_losses()
        train_loss = sum(e._epoch_losses) / len(e._epoch_losses) if e._epoch_losses else float("nan")
        metrics = {k: float(v) for k, v in metrics.items()}
        if p.averaging is not None:
            e._after_epoch_averaging()
        if "val_loss" in metrics or "val_acc" in metrics:
            loss, acc = metrics.get("val_loss", float("nan")), metrics.get("val_acc", float("nan"))
            rest = {k: v for k, v in metrics.items() if k not in ("val_loss", "val_acc")}
            if acc == acc and acc >= e.best.get("best_val_acc", -1.0):
                e.best = {"best_val_acc": acc, "best_val_loss": loss, "best_step": e.step}
            e._emit("eval", split="val", model="raw", loss=loss, acc=acc, reason="epoch", **({"metrics": rest} if rest else {}))
        metrics["train_loss"] = train_loss
        p.schedules.observe(metrics, e.step)
        e._apply_knobs()
        e._check_early_stop(metrics)
        active = e.active_seconds()
        sps = round(e._samples / active, 2) if active > 0 and e._samples else None
        e._emit("epoch", epoch=e.epoch, epochs=self.cfg["epochs"], elapsed_s=round(active, 3), samples_per_s=sps, **metrics)
        e.epoch += 1
        e._epoch_losses = []
        self._print()
        if e._stop_status:
            raise StopRun(e._stop_status)

    def value(self, knob: str) -> float:
        """A knob's value for the next update (for values your loop reads rather than sets through a Knob)."""
        return self.engine._applied[knob]

    def _close(self, exc: BaseException | None) -> None:
        if self._done or self.engine is None:
            return
        self._done = True
        e = self.engine
        e._read_losses()
        if exc is None or isinstance(exc, StopRun):
            status = e._stop_status or "completed"
        elif isinstance(exc, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "crashed"
            tb = self.run_dir / "traceback.txt"
            tb.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), encoding="utf-8")
            e._emit("error", message=f"{type(exc).__name__}: {exc}", traceback_file=str(tb))
        e.status = status
        reason = {"reason": e._end_reason} if e._end_reason else {}
        e._emit("end", status=status, epochs_completed=e.epoch, elapsed_s=round(e.active_seconds(), 3), **reason, **e.best)
        e.log.close()
        e._refuse_pending()
        self._print()

    def __enter__(self) -> "Monitor":
        self._open()
        from rich.console import Console

        self._console = Console(stderr=True)
        self._console.print(f"schedtui: {self.cfg['name']}, log {self.run_dir / 'events.jsonl'}", soft_wrap=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._close(exc)
        return isinstance(exc, StopRun)

    def _print(self) -> None:
        if self._console is None:
            return
        from schedtui.headless import _drain

        _drain(self.engine, self._events, self._state, None, self._console)

    # ---- under the live screen ----------------------------------------------------------------
    def run(self, train, refresh_hz: float = 10.0) -> str:
        """Run `train(mon)` under the live UI (on a worker thread; the UI needs the main thread), or headless
        without a terminal. Returns the run's final status."""
        if not (sys.stdout.isatty() and sys.stdin.isatty()):
            with self:
                train(self)
            return self.engine.status
        from schedtui.launch import StartedRun
        from schedtui.ui.app import TrainApp
        from schedtui.ui.source import LiveSource

        def loop() -> None:
            try:
                train(self)
            except BaseException as exc:  # StopRun, or the user's error: the log says which
                self._close(exc)
            else:
                self._close(None)

        def start() -> StartedRun:
            self._open()
            worker = threading.Thread(target=loop, name="schedtui-own-loop", daemon=True)
            self.engine._thread = worker  # the engine's `running` and `join` follow your loop
            worker.start()
            return StartedRun(self.engine, self.engine.log.header, self._events, self.run_dir)

        source = LiveSource(start)
        source.begin()
        TrainApp(source, refresh_hz=refresh_hz).run()
        source.wait_started()
        if source.error is not None:
            raise source.error
        if self.engine.running:  # the screen closed first: stop at the next step boundary
            self.engine.send("stop")
            self.engine.join()
        return self.engine.status
