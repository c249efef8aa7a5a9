"""The training engine: one background thread that owns the model, optimizer and data.

Other threads talk to it only through `send(command, **args)`, which queues a command
and returns a `concurrent.futures.Future`. Commands (pause, resume, edit,
validate, checkpoint, stop) are applied at the next step boundary, in
`_apply_pending`, and each applied command becomes an event carrying the step at
which it applied (DESIGN.md "Steps, epochs and edits": the knob values for update
k+1 are computed when step == k). The queries `preview` (an edit's curve, applied
to nothing) and `describe` (every knob's schedule and next change) answer there
too. Planned edits (the preset's `[[edits]]`, or a rerun's logged edits) and a
rerun's manual validations are applied in the same place, at exactly their step,
before the commands queued by people. Everything the engine does is emitted to the
event log, whose subscribers (the live UI, the headless progress display) read it
on their own threads; the engine never waits for them.

Losses stay on the device and are read in batches (`engine.read_every` updates or
`engine.flush_interval` seconds, whichever first): one host-device sync per read.
torch only; must not import textual or rich.
"""

from __future__ import annotations

import math
import queue
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import torch

from schedtui.engine.build import RunParts
from schedtui.engine.evaluate import evaluate
from schedtui.errors import UserError

_RATE_WINDOW_S = 0.5
OPS = ("pause", "resume", "edit", "validate", "checkpoint", "stop", "preview", "describe")


@dataclass
class Rerun:
    """How a rerun differs from a fresh run of the same config (see `schedtui.commands.rerun`)."""

    plan: list = field(default_factory=list)  # (step, command, args) in the source's order: edits, manual validations
    stop_at: int | None = None  # the step where the source run ended early, or --until
    stop_reason: str = ""
    pause_at_stop: bool = False  # the UI pauses there so a person can branch; headless stops


class Engine:
    def __init__(self, parts: RunParts, log, run_dir: Path, rerun: Rerun | None = None):
        self.parts, self.log, self.run_dir = parts, log, Path(run_dir)
        eng = parts.cfg["engine"]
        self._read_every = eng["read_every"] or (1 if parts.device.type == "cpu" else 64)
        self._flush_interval = eng["flush_interval"]
        self._on_nonfinite = eng["on_nonfinite"]
        self._rerun = rerun
        if rerun is not None and self._on_nonfinite == "pause":
            self._on_nonfinite = "warn"  # a rerun is pause-free: the source's pause is not part of its values
        if rerun is not None:  # the source's edits and validations, in the order it applied them
            self._plan = list(rerun.plan)
        else:
            self._plan = [(e["step"], "edit", {k: v for k, v in e.items() if k != "step"}) for e in parts.cfg["edits"]]
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

    # ---- other threads ---------------------------------------------------------------------
    def start(self) -> "Engine":
        self._t0 = time.monotonic()
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
        return time.monotonic() - self._t0 - paused

    # ---- the engine thread -------------------------------------------------------------------
    def _emit(self, type_: str, step: int | None = None, **fields) -> dict:
        return self.log.emit(type_, self.step if step is None else step, **fields)

    def _main(self) -> None:
        status = "completed"
        try:
            self._train()
            self._apply_pending(block=False)
            status = self._stop_status or "completed"
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
        for epoch in range(p.cfg["epochs"]):
            self.epoch = epoch
            p.data.train.set_epoch(epoch)
            p.model.train()
            self._epoch_losses = []
            for xb, yb in p.data.train:
                self._apply_pending()
                if self._stop_status:
                    return
                self._update(xb, yb)
            self._read_losses()
            self._end_of_epoch(epoch)
            if self._stop_status:
                return
        self.epoch = p.cfg["epochs"]

    def _update(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        p = self.parts
        p.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(p.device.type, dtype=p.amp_dtype, enabled=p.amp_dtype is not None):
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
        self._pending.append((self.step, self._applied, parts))
        if len(self._pending) >= self._read_every or self.active_seconds() - self._last_read[0] >= self._flush_interval:
            self._read_losses()
        self._apply_knobs()

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
        rows = torch.stack([t for _, _, t in self._pending]).tolist()  # one host-device sync per read
        active = self.active_seconds()
        self._last_read = (active, self._samples)
        dt = active - self._rate_mark[0]
        if dt >= _RATE_WINDOW_S or self._sps is None:  # throughput over at least half a second, not per read
            self._sps = round((self._samples - self._rate_mark[1]) / dt, 2) if dt > 0 else None
            self._rate_mark = (active, self._samples)
        sps = self._sps
        names = self.parts.loss.names
        bad = None
        for (step, knobs, _), row in zip(self._pending, rows):
            fields = {"epoch": self.epoch, "loss": row[0], "knobs": knobs, "samples_per_s": sps}
            if len(names) > 1:
                fields["terms"] = dict(zip(names, row[1:]))
            self._emit("step", step, **fields)
            if math.isfinite(row[0]):
                self._epoch_losses.append(row[0])
            elif bad is None:
                bad = (step, row[0])
        self._pending = []
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
        if (epoch + 1) % p.cfg["engine"]["eval_every"] == 0 or last:
            ev = self._validate()
            metrics |= {"val_loss": ev["loss"], "val_acc": ev["acc"]}
            p.schedules.observe(metrics)
            self._apply_knobs()  # a metric-driven schedule may have moved
        active = self.active_seconds()
        done, total = self.step, p.timing.total_steps
        eta = active / done * (total - done) if done else None
        self._emit("epoch", epoch=epoch, epochs=p.cfg["epochs"], elapsed_s=round(active, 3),
                   eta_s=None if eta is None else round(eta, 1),
                   samples_per_s=round(self._samples / active, 2) if active > 0 else None, **metrics)

    def _validate(self, reason: str = "epoch") -> dict:
        p = self.parts
        loss, acc = evaluate(p.model, p.data.val, p.loss, p.amp_dtype)
        if math.isfinite(acc) and acc >= self.best.get("best_val_acc", -1.0):
            self.best = {"best_val_acc": acc, "best_val_loss": loss, "best_step": self.step}
        return self._emit("eval", split="val", model="raw", loss=loss, acc=acc, reason=reason)

    # ---- commands ------------------------------------------------------------------------------
    def _apply_pending(self, block: bool = True) -> None:
        """Apply the plan's entries for this step, then every queued command; while paused (and `block`),
        wait here for more."""
        self._apply_plan()
        while True:
            waiting = self._paused and block and not self._stop_status  # resume and stop arrive here too
            try:
                command, args, fut = self._commands.get() if waiting else self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(getattr(self, f"_cmd_{command}")(**args))
            except UserError as e:
                fut.set_exception(e)
            except TypeError as e:  # wrong arguments for the command
                fut.set_exception(UserError(f"{command}: {e}"))

    def _apply_plan(self) -> None:
        while self._plan and self._plan[0][0] <= self.step:
            step, command, args = self._plan.pop(0)
            try:
                if command == "edit":
                    self._edit(planned=True, **args)
                else:
                    getattr(self, f"_cmd_{command}")(**args)
            except UserError as e:  # a preset's planned edit that does not fit the run as it went
                self._emit("warning", message=f"planned {command} at step {step} not applied: {e}")
        r = self._rerun
        if r is not None and r.stop_at is not None and self.step >= r.stop_at:
            r.stop_at = None
            if r.pause_at_stop:
                self._drop_plan(r.stop_reason)
                self._pause(r.stop_reason)
            else:
                self._stop_status, self._end_reason = "stopped", r.stop_reason

    def _drop_plan(self, why: str) -> None:
        """A rerun branches from its source here: what the source did later no longer applies."""
        edits = sum(1 for p in self._plan if p[1] == "edit")
        later = f"; its {edits} later edit{'s' if edits != 1 else ''} will not be applied" if edits else ""
        self._emit("warning", message=f"{why}: the rerun branches from its source at step {self.step}{later}")
        self._plan, self._rerun = [], None
        self._on_nonfinite = self.parts.cfg["engine"]["on_nonfinite"]

    def _pause(self, reason: str) -> dict:
        self._paused, self._pause_t0, self.status = True, time.monotonic(), "paused"
        ev = self._emit("pause", reason=reason)
        self.log.flush(wait=False)
        return ev

    def _cmd_pause(self, reason: str = "user") -> dict:
        return self._pause(reason) if not self._paused else {"type": "pause", "step": self.step, "already": True}

    def _cmd_resume(self) -> dict:
        if not self._paused:
            return {"type": "resume", "step": self.step, "already": True}
        self._paused_total += time.monotonic() - self._pause_t0
        self._paused, self.status = False, "running"
        return self._emit("resume")

    def _cmd_edit(self, knob: str, op: str, value=None, factor=None, spec=None) -> dict:
        if self._rerun is not None:  # a person steers a rerun: from here on it is a new run
            self._drop_plan(f"live edit of {knob}")
        return self._edit(knob, op, value, factor, spec)

    def _edit(self, knob: str, op: str, value=None, factor=None, spec=None, planned: bool = False) -> dict:
        fields = self.parts.schedules.edit(knob, op, step=self.step, current=self._applied, value=value, factor=factor, spec=spec)
        self._apply_knobs()
        ev = self._emit("edit", **fields, **({"planned": True} if planned else {}))
        self.log.flush(wait=False)
        return ev

    def _cmd_preview(self, knob: str, op: str, value=None, factor=None, spec=None, points: int = 64) -> dict:
        """An edit's effect as curves (before/after), applied to nothing; raises UserError like `edit`."""
        return self.parts.schedules.preview(knob, op, step=self.step, current=self._applied, points=points,
                                            value=value, factor=factor, spec=spec)

    def _cmd_describe(self) -> dict:
        """Every knob: what drives it, whether an edit overrides it, its next change, and its bounds."""
        s = self.parts.schedules
        out = {}
        for k, knob in self.parts.knobs.items():
            nxt = s.next_change(k, self.step)
            out[k] = {"value": self._applied.get(k), "schedule": s.describe(k), "override": s.overridden(k),
                      "next": None if nxt is None else {"step": nxt[0], "value": nxt[1], "every_step": nxt[0] == self.step + 1},
                      "bounds": str(knob.bounds), "doc": knob.doc}
        return {"step": self.step, "knobs": out}

    def _cmd_validate(self) -> dict:
        self._read_losses()
        return self._validate(reason="manual")

    def _cmd_checkpoint(self) -> dict:
        p = self.parts
        path = self.run_dir / "checkpoints" / f"step-{self.step:08d}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": "schedtui-checkpoint", "version": 1, "step": self.step, "epoch": self.epoch,
                    "model": p.model.state_dict(), "optimizer": p.optimizer.state_dict(),
                    "schedules": p.schedules.state_dict(), "knobs": dict(self._applied)}, path)
        ev = self._emit("checkpoint", path=str(path))
        self.log.flush(wait=False)
        return ev

    def _cmd_stop(self, status: str = "stopped") -> dict:
        if status not in ("stopped", "interrupted"):
            raise UserError(f"stop: status must be stopped or interrupted, got {status!r}")
        self._stop_status = status
        return {"type": "stop", "step": self.step, "status": status}

    def _refuse_pending(self) -> None:
        while True:
            try:
                _, _, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            fut.set_exception(UserError(f"the run has ended ({self.status})"))
