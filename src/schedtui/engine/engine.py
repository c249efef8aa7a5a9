"""The training engine: one background thread that owns the model, optimizer and data.

Other threads talk to it only through `send(command, **args)`, which queues a command
and returns a `concurrent.futures.Future`; the commands are applied at the next
step boundary (`engine.commands`: the command path and every command). Everything
the engine does is emitted to the event log, whose subscribers (the live UI, the
headless progress display) read it on their own threads; the engine never waits
for them.

Checkpoints (`engine.checkpoint`): on the `checkpoint` command, every
`engine.checkpoint_every` epochs (at the next step boundary), and when the run
ends other than by crashing (stopped, interrupted, completed), each with a
`checkpoint` event. Components that have state of their own register in
`stateful` (name -> object with `state_dict()` / `load_state_dict()`) before the
run starts; checkpoints save and restore them. A resumed run is an engine built
from the same config and `checkpoint.restore`d before `start`; it trains on from
the checkpoint's step, epoch and batch.

Losses stay on the device and are read in batches (`engine.read_every` updates or
`engine.flush_interval` seconds, whichever first; on the CPU, where a read costs no
sync, at least every `CPU_READ_S` seconds so displays stay current): one host-device
sync per read. Everything pending is read before a command or planned entry applies
at a step boundary, so a step's event always precedes what happened after it. The
per-step path is kept lean (measured against a bare PyTorch loop in
benchmarks/overhead.py): no autocast context when autocast is off, one clock read,
nothing but a queue check at a boundary where no command waits.
torch only; must not import textual or rich.
"""

from __future__ import annotations

import math
import queue
import threading
import time
import traceback
from concurrent.futures import Future
from pathlib import Path

import torch

from schedtui.engine.averaged_run import AveragedRun
from schedtui.engine.averaging import swa_start_step
from schedtui.engine.build import RunParts
from schedtui.engine.commands import OPS, Commands, Rerun
from schedtui.engine.evaluate import evaluate
from schedtui.errors import UserError

__all__ = ["OPS", "Engine", "Rerun"]

_RATE_WINDOW_S = 0.5
CPU_READ_EVERY = 256  # on the CPU a read is no sync: batching it is only to spare Python work per step
CPU_READ_S = 0.1  # ... and it happens at least this often, so a screen sees every frame's steps
_monotonic = time.monotonic


class Engine(Commands, AveragedRun):
    def __init__(self, parts: RunParts, log, run_dir: Path, rerun: Rerun | None = None):
        self.parts, self.log, self.run_dir = parts, log, Path(run_dir)
        eng = parts.cfg["engine"]
        cpu = parts.device.type == "cpu"
        self._read_every = eng["read_every"] or (CPU_READ_EVERY if cpu else 64)
        self._flush_interval = eng["flush_interval"]
        self._read_interval = min(self._flush_interval, CPU_READ_S) if cpu else self._flush_interval
        self._read_due = 0.0  # monotonic time by which pending losses are read
        self._autocast = parts.amp_dtype is not None
        self._on_nonfinite = eng["on_nonfinite"]
        self._rerun = rerun
        if rerun is not None and self._on_nonfinite == "pause":
            self._on_nonfinite = "warn"  # a rerun is pause-free: the source's pause is not part of its values
        if rerun is not None:  # the source's edits and validations, in the order it applied them
            self._plan = list(rerun.plan)
        else:
            self._plan = [(e["step"], "edit", {k: v for k, v in e.items() if k != "step"}) for e in parts.cfg["edits"]]
            swa_at = swa_start_step(parts.cfg["swa"], parts.timing) if "swa" in parts.cfg else None
            if swa_at is not None:  # after the preset's edits of the same step
                self._plan = sorted(self._plan + [(swa_at, "swa", {"op": "start"})], key=lambda p: p[0])
        self._end_reason: str | None = None
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="schedtui-engine", daemon=True)
        self._scaler = torch.amp.GradScaler("cuda") if parts.amp_dtype == torch.float16 else None
        self.step = 0
        self.epoch = 0
        self.status = "ready"  # running | paused | completed | stopped | crashed | interrupted
        self._paused = False
        self._stop_status: str | None = None
        self._applied: dict = {}
        self._pending: list = []  # (step, knob values used, device tensor [total, terms...])
        self._samples = 0
        self._t0 = self._pause_t0 = 0.0
        self._paused_total = 0.0
        self._last_read = (0.0, 0)  # (active seconds, samples) at the last read
        self._rate_mark = (0.0, 0)  # start of the current throughput window
        self._sps: float | None = None
        self._epoch_losses: list[float] = []
        self.best: dict = {}
        self.stateful: dict = {}  # name -> object with state_dict() / load_state_dict(d): saved in checkpoints
        if parts.averaging is not None:
            self.stateful["averaging"] = parts.averaging
        if parts.early_stop is not None:
            self.stateful["early_stop"] = parts.early_stop
        self._position = (0, 0)  # (epoch, batch) of the next batch to train
        self._loader_rng = None  # the transform generator's state to resume mid-epoch with
        self._active_offset = 0.0  # active seconds before a resume
        self._checkpoint_due = False
        self._origin: str | None = None  # while a command applies: who sent it (`by` on its events)

    # ---- other threads ---------------------------------------------------------------------
    def start(self) -> "Engine":
        self._t0 = time.monotonic()
        self._last_read = self._rate_mark = (self._active_offset, self._samples)
        self._read_due = self._t0 + self._read_interval
        self.status = "running"
        self._thread.start()
        return self

    def send(self, command: str, /, **args) -> Future:
        """Queue a command for the next step boundary; the future gets the event it produced."""
        fut: Future = Future()
        if command not in OPS:
            fut.set_exception(UserError(f"unknown command {command!r}; valid: {', '.join(OPS)}"))
        elif not self._thread.is_alive() and self._thread.ident is not None:
            fut.set_exception(UserError(f"the run has ended ({self.status})"))
        else:
            self._commands.put((command, args, fut))
        return fut

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def active_seconds(self) -> float:
        """Wall time since start, less the time spent paused."""
        paused = self._paused_total + (time.monotonic() - self._pause_t0 if self._paused else 0.0)
        return self._active_offset + time.monotonic() - self._t0 - paused

    # ---- the engine thread -------------------------------------------------------------------
    def _emit(self, type_: str, step: int | None = None, **fields) -> dict:
        if self._origin is not None and "by" not in fields:  # an event a command made says who sent it
            fields["by"] = self._origin
        return self.log.emit(type_, self.step if step is None else step, **fields)

    def _main(self) -> None:
        status = "completed"
        try:
            self._train()
            self._apply_pending(block=False)
            status = self._stop_status or "completed"
            self._checkpoint(status)
        except Exception as e:  # the run crashed: say so in the log, keep the log readable
            status = "crashed"
            tb = traceback.format_exc()
            tb_path = self.run_dir / "traceback.txt"
            tb_path.write_text(tb, encoding="utf-8")
            self._emit("error", message=f"{type(e).__name__}: {e}", traceback_file=str(tb_path))
        finally:
            try:
                self._read_losses()
            except Exception:  # the device itself failed; the losses still pending are lost
                pass
            self.status = status
            try:
                reason = {"reason": self._end_reason} if self._end_reason else {}
                self._emit("end", status=status, epochs_completed=self.epoch, elapsed_s=round(self.active_seconds(), 3),
                           **reason, **self.best)
                self.log.close()
            except RuntimeError:  # the interpreter is exiting and closed the log first
                pass
            self._refuse_pending()

    def _train(self) -> None:
        p = self.parts
        self._apply_knobs()
        first_epoch, first_batch = self._position
        for epoch in range(first_epoch, p.cfg["epochs"]):
            self.epoch = epoch
            p.data.train.set_epoch(epoch)
            p.model.train()
            start = first_batch if epoch == first_epoch else 0
            if start == 0:
                self._epoch_losses = []
            batches = p.data.train.iter_from(start, self._loader_rng if start else None)
            for i in range(start, len(p.data.train)):
                self._position = (epoch, i)  # a checkpoint taken at this boundary resumes here
                self._apply_pending()
                if self._stop_status:
                    return
                self._update(*next(batches))
            self._position = (epoch + 1, 0)
            self._read_losses()
            self._end_of_epoch(epoch)
            if self._stop_status:  # stopped after this epoch's end (early stopping): it is complete
                self.epoch = epoch + 1
                return
        self.epoch = p.cfg["epochs"]

    def _update(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        p = self.parts
        p.optimizer.zero_grad(set_to_none=True)
        if self._autocast:
            with torch.autocast(p.device.type, dtype=p.amp_dtype):
                logits = p.model(xb)
        else:  # entering a disabled autocast still costs microseconds a step
            logits = p.model(xb)
        total, parts = p.loss(logits, yb)
        if self._scaler is not None:
            self._scaler.scale(total).backward()
            if p.clip.value > 0:
                self._scaler.unscale_(p.optimizer)
                torch.nn.utils.clip_grad_norm_(p.model.parameters(), p.clip.value)
            self._scaler.step(p.optimizer)
            self._scaler.update()
        else:
            total.backward()
            if p.clip.value > 0:
                torch.nn.utils.clip_grad_norm_(p.model.parameters(), p.clip.value)
            p.optimizer.step()
        self.step += 1
        self._samples += yb.shape[0]
        if p.averaging is not None:
            self._after_update_averaging()  # EMA every step; SWA when due by steps
        self._record(parts)
        self._apply_knobs()

    def _record(self, losses: torch.Tensor) -> None:
        """Keep update `step`'s losses ([total, terms...], on the device) and the knob values it used; read
        them in a batch when enough are pending or the read is due."""
        self._pending.append((self.step, self._applied, losses))
        if len(self._pending) >= self._read_every or _monotonic() >= self._read_due:
            self._read_losses()

    def _apply_knobs(self) -> None:
        """Compute every knob's value for update step+1 and write the changed ones to the live objects."""
        if self._applied and self.step >= self.parts.timing.total_steps:
            return  # no update follows the last one (and OneCycleLR extrapolates past its end)
        vals = self.parts.schedules.values(self.step)
        for k, v in vals.items():
            if self._applied.get(k) != v:
                self.parts.knobs[k].set(v)
        self._applied = vals

    def _read_losses(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        rows = torch.stack([t for _, _, t in pending]).tolist()  # one host-device sync per read
        active = self.active_seconds()
        self._last_read = (active, self._samples)
        self._read_due = _monotonic() + self._read_interval
        dt = active - self._rate_mark[0]
        if dt >= _RATE_WINDOW_S or self._sps is None:  # throughput over at least half a second, not per read
            self._sps = round((self._samples - self._rate_mark[1]) / dt, 2) if dt > 0 else None
            self._rate_mark = (active, self._samples)
        sps, epoch, keep = self._sps, self.epoch, self._epoch_losses.append
        names = self.parts.loss.names
        terms = len(names) > 1
        bad, items = None, []
        for (step, knobs, _), row in zip(pending, rows):
            loss = row[0]
            if terms:
                items.append((step, {"epoch": epoch, "loss": loss, "knobs": knobs, "samples_per_s": sps,
                                     "terms": dict(zip(names, row[1:]))}))
            else:
                items.append((step, {"epoch": epoch, "loss": loss, "knobs": knobs, "samples_per_s": sps}))
            if math.isfinite(loss):
                keep(loss)
            elif bad is None:
                bad = (step, loss)
        self.log.emit_many("step", items)  # one lock and one timestamp for the batch
        if bad is not None:
            self._nonfinite(*bad)

    def _nonfinite(self, step: int, value: float) -> None:
        action = {"pause": "pausing", "stop": "stopping", "warn": "continuing"}[self._on_nonfinite]
        self._emit("warning", step, message=f"non-finite loss ({value}) at step {step}; {action}", loss=value)
        self.log.flush(wait=False)
        if self._on_nonfinite == "pause" and not self._paused:
            self._pause("non-finite loss")
        elif self._on_nonfinite == "stop":
            self._stop_status = "stopped"

    def _end_of_epoch(self, epoch: int) -> None:
        p = self.parts
        train_loss = sum(self._epoch_losses) / len(self._epoch_losses) if self._epoch_losses else float("nan")
        metrics = {"train_loss": train_loss}
        last = epoch + 1 == p.cfg["epochs"]
        if p.averaging is not None:
            self._after_epoch_averaging()  # SWA takes this epoch's weights before they are evaluated
        if (epoch + 1) % p.cfg["engine"]["eval_every"] == 0 or last:
            ev = self._validate()
            metrics |= {"val_loss": ev["loss"], "val_acc": ev["acc"]}
            if p.averaging is not None:
                self._evaluate_averaged("epoch")
            p.schedules.observe(metrics, self.step)
            self._apply_knobs()  # a metric-driven schedule may have moved
            self._check_early_stop(metrics)
        every = p.cfg["engine"].get("checkpoint_every", 0)
        self._checkpoint_due = bool(every) and (epoch + 1) % every == 0 and epoch + 1 < p.cfg["epochs"]
        active = self.active_seconds()
        done, total = self.step, p.timing.total_steps
        eta = active / done * (total - done) if done else None
        self._emit("epoch", epoch=epoch, epochs=p.cfg["epochs"], elapsed_s=round(active, 3),
                   eta_s=None if eta is None else round(eta, 1),
                   samples_per_s=round(self._samples / active, 2) if active > 0 else None, **metrics)

    def _validate(self, reason: str = "epoch") -> dict:
        p = self.parts
        extra: dict = {}
        loss, acc = evaluate(p.model, p.data.val, p.loss, p.amp_dtype, p.metrics, extra)
        if math.isfinite(acc) and acc >= self.best.get("best_val_acc", -1.0):
            self.best = {"best_val_acc": acc, "best_val_loss": loss, "best_step": self.step}
        return self._emit("eval", split="val", model="raw", loss=loss, acc=acc, reason=reason,
                          **({"metrics": extra} if extra else {}))
