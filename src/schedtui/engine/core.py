"""The run core: one object that owns a run's step boundary, whatever drives the updates.

Every driver — the built-in loop (`engine.engine.Engine`), your own loop
(`schedtui.monitor`), a framework callback, one rank of a DDP job — runs the
same `RunCore` and only calls its public API, on the thread that trains:

- `begin()` before the first update: the clock starts and the knob values for
  update 1 are written (only those a schedule or an edit names: adopt, never
  overwrite).
- `update_starting()` (optional) right before an optimizer step, when code the
  core does not see may change a knob between there and `after_update` (a
  scheduler stepped after `optimizer.step()` in your own loop).
- `scheduler_stepped()` when an adopted scheduler that the driver's framework
  steps has moved (`engine.adopted.observe_scheduler`): its knobs are written.
- `after_update(loss, batch_size=None, terms=None)` after each optimizer update
  (`after_update_row` when the loss is already a device row [total, term...]):
  the step count moves on, the loss is kept on the device and read in batches,
  the values the live objects held for that update are read back (what the log
  records), and the next update's knob values are written.
- `boundary(block=True)` between two updates: the one place where planned
  entries (a preset's `[[edits]]`, a rerun's logged edits), due checkpoints and
  commands apply; a pause waits here. Returns the stop status (or None).
- `end_epoch(metrics=None)` at an epoch's end: averaging, validation (the
  driver's `evaluate`, or the metrics it hands over), metric-driven schedules,
  early stopping, the `epoch` event.
- `finish(status=None, error=None)` once: the final checkpoint, the `end` event,
  the log closed, every command still queued answered.
- `state_dict()` / `load_state_dict()` for checkpoints (`engine.checkpoint`).

Commands reach the core through a channel (`engine.channel`): `send(command, /,
by=None, **args)` from any thread returns a Future. The core applies them at the
boundary the channel says; it does not know which channel it has. The commands
themselves are `engine.commands.Commands` (`core.commands`), the evaluations
`engine.validation.Validation` (`core.validation`); both use this object's
public state. Any exception while handling a command answers its future with a
one-line error and a `warning` event; it never ends the run. A full disk pauses
the run at a boundary (`engine.commands`), a data-parallel run's lost rank ends
it (`engine.ddp_watch`). The losses still pending are read
before anything applies at a boundary, so a step's event precedes what
happened after it. torch only; must not import textual or rich.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
import threading
from dataclasses import dataclass, field
from pathlib import Path

from schedtui.engine import crash
from schedtui.engine.averaging import swa_start_step
from schedtui.engine.channel import CommandQueue
from schedtui.engine.clock import ActiveClock
from schedtui.engine.commands import OPS, Commands
from schedtui.engine.knob_writer import KnobWriter
from schedtui.engine.steps import StepRecorder, loss_row, number
from schedtui.engine.validation import Validation
from schedtui.errors import UserError

__all__ = ["OPS", "Rerun", "RunCore"]

CPU_READ_EVERY = 256  # on the CPU a read is no sync: batching it only spares Python work per step
CPU_READ_S = 0.1  # ... and it happens at least this often, so a screen sees every frame's steps
DISK_RETRY_S = 2.0  # while a full disk holds the run: how often it tries again
DDP_CADENCE = 16  # a data-parallel run's commands are broadcast every this many updates (and losses read)


@dataclass
class Rerun:
    """How a rerun differs from a fresh run of the same config (see `schedtui.commands.rerun`)."""

    plan: list = field(default_factory=list)  # (step, command, args) in the source's order: edits, validations, swa
    stop_at: int | None = None  # the step where the source run ended early, or --until
    stop_reason: str = ""
    pause_at_stop: bool = False  # the UI pauses there so a person can branch; headless stops


class RunCore:
    def __init__(self, parts, log, run_dir, *, rerun: Rerun | None = None, channel=None, evaluate=None,
                 bn_data=None, checkpoint_at_end: bool = True, dist=None):
        """`evaluate(model) -> (loss, acc, extra metrics)` on the validation data (None: the driver hands metrics
        to `end_epoch`); `bn_data`: batches for SWA's update_bn (None: none); `dist`: this rank of a data-parallel
        job (`engine.ddp.Dist`): commands come by broadcast, losses are read as the mean over the ranks, and every
        epoch's end checks that the ranks' parameters agree."""
        self.parts, self.log, self.run_dir, self.dist = parts, log, Path(run_dir), dist
        eng = parts.cfg["engine"]
        cpu = parts.device.type == "cpu"
        read_every = eng["read_every"] or (CPU_READ_EVERY if cpu else 64)
        read_interval = min(eng["flush_interval"], CPU_READ_S) if cpu else eng["flush_interval"]
        if channel is None and dist is not None:
            from schedtui.engine.broadcast import BroadcastChannel

            channel = BroadcastChannel(dist, OPS, eng.get("ddp_cadence", DDP_CADENCE))
        self.channel = channel if channel is not None else CommandQueue(OPS)
        self.clock = ActiveClock()
        self.recorder = StepRecorder(log, read_every, read_interval, self.clock.seconds,
                                     reduce=dist.mean_ if dist is not None else None)
        self.watch = None
        if dist is not None:  # a rank that dies or hangs ends the run crashed, naming it, in bounded time
            from schedtui.engine.ddp_watch import Watch

            self.watch = Watch(dist, on_dead=self._ranks_lost, stale_s=eng.get("rank_timeout", 30.0))
        self.writer = KnobWriter(parts.knobs, parts.schedules, parts.adopted)
        self.validation = Validation(self, evaluate, bn_data)
        self.commands = Commands(self)
        self._checkpoint_at_end = checkpoint_at_end
        self.on_nonfinite = "warn" if rerun is not None and eng["on_nonfinite"] == "pause" else eng["on_nonfinite"]
        self.rerun = rerun  # a rerun is pause-free: the source's pause is not part of its values
        if rerun is not None:
            self.plan = list(rerun.plan)
        else:
            self.plan = [(e["step"], "edit", {k: v for k, v in e.items() if k != "step"}) for e in parts.cfg["edits"]]
            swa_at = swa_start_step(parts.cfg["swa"], parts.timing) if "swa" in parts.cfg else None
            if swa_at is not None:  # after the preset's edits of the same step
                self.plan = sorted(self.plan + [(swa_at, "swa", {"op": "start"})], key=lambda p: p[0])
        self.step = 0
        self.epoch = 0  # epochs completed: the index of the epoch under way
        self.status = "ready"  # running | paused | completed | stopped | crashed | interrupted
        self.paused = False
        self.stopping: str | None = None  # the status the run ends with once it stops at a boundary
        self.stopped_by: str | None = None  # who asked for that stop ("ui", "ctl", "attach", ...): on the end event
        self.end_reason: str | None = None
        self.stateful: dict = {}  # name -> object with state_dict() / load_state_dict(d): saved in checkpoints
        for name in ("averaging", "early_stop", "scheduler"):
            if getattr(parts, name) is not None:
                self.stateful[name] = getattr(parts, name)
        self.updates_guarded = False  # the driver makes a non-finite update a no-op (on the device) before it is read
        self.loop = None  # the driver's own state for checkpoints (state_dict / load_state_dict), if it has any
        self.checkpoint_due = False
        self._origin: str | None = None  # while a command applies: who sent it
        self._snapshot: tuple | None = None  # knob values read back by update_starting()
        self._finished = False
        self._finish_lock = threading.Lock()
        self._handlers = {op: getattr(self.commands, op) for op in OPS}
        self._total = parts.timing.total_steps

    # ---- any thread ------------------------------------------------------------------------------
    def send(self, command: str, /, by: str | None = None, **args):
        """Queue a command for the boundary its channel says; the future gets the event it produced."""
        return self.channel.send(command, by=by, **args)

    def active_seconds(self) -> float:
        """Wall time since begin(), less the time spent paused (plus the time before a resume)."""
        return self.clock.seconds()

    @property
    def values(self) -> dict:
        """Every knob's value for the next update (don't mutate it)."""
        return self.writer.values

    @property
    def samples(self) -> int:
        return self.recorder.samples

    @property
    def best(self) -> dict:
        return self.validation.best

    # ---- the driver's API (the training thread) ----------------------------------------------------
    def begin(self) -> None:
        self.clock.start(paused=self.paused)
        self.status = "paused" if self.paused else "running"
        self.recorder.start(self.clock.offset)
        if self.step < self._total:
            self.writer.advance(self.step)

    @property
    def origin(self) -> str | None:
        """Who sent the command being applied now (its `by`), else None."""
        return self._origin

    def emit(self, type_: str, step: int | None = None, **fields) -> dict:
        """An event at this step (or `step`); events a command made say who sent it."""
        if self._origin is not None and "by" not in fields:
            fields["by"] = self._origin
        return self.log.emit(type_, self.step if step is None else step, **fields)

    def update_starting(self) -> None:
        """Read the knob values back now: the update about to run uses these (see the module docstring)."""
        self._snapshot = self.writer.read_back()

    def after_update(self, loss, batch_size: int | None = None, terms: dict | None = None) -> None:
        """After an optimizer update: `loss` a scalar tensor or a float, `terms` named parts of it (logged)."""
        names = None
        if terms:
            if not isinstance(terms, dict) or not all(isinstance(k, str) for k in terms):
                raise UserError(f"terms must be a dict of name -> loss, got {type(terms).__name__}")
            names = tuple(terms)
        self.after_update_row(loss_row(loss, terms), names, batch_size)

    def after_update_row(self, row, names: tuple | None = None, batch_size: int | None = None) -> None:
        """`after_update` for a loss already on the device as a 1-D row [total, term...] (`names`: the terms')."""
        step = self.step + 1
        if step > self._total:
            raise UserError(f"update {step} is past the planned run ({self.parts.cfg['epochs']} epochs x "
                            f"{self.parts.timing.steps_per_epoch} steps = {self._total} updates): give epochs and "
                            "steps_per_epoch that cover the whole loop")
        self.step = step
        if batch_size:
            self.recorder.samples += batch_size
        avg = self.parts.averaging
        if avg is not None:
            fields = avg.after_update(step)  # EMA every step; SWA when due by steps
            if fields is not None:
                self.emit("swa", **fields)
        if self._snapshot is not None:
            (knobs, drifted), self._snapshot = self._snapshot, None
        else:
            knobs, drifted = self.writer.read_back()
        if drifted:
            self._warn_drift(drifted)
        if self.recorder.add(step, knobs, row, names):
            self.read_losses()
        sched = self.parts.scheduler
        if sched is not None and sched.unit == "step" and step < self._total:
            self._step_scheduler()
        elif step < self._total:
            self.writer.advance(step)

    def boundary(self, block: bool = True) -> str | None:
        """Apply what is due at this boundary; while paused (and `block`), wait here. Returns `stopping`."""
        if not self._due():
            return self.stopping  # the common case, every step: a few attribute reads to find out
        self.read_losses()
        cmds = self.commands
        if self.log.failed is not None and not self.paused:  # a full disk: hold everything until it can be written
            cmds.pause_for_disk(f"cannot write the log ({self.log.failed})")
        self._apply_plan()
        if self.checkpoint_due and not cmds.disk_paused:  # after the plan, so a resume does not apply it twice
            self.checkpoint("epoch")
        while True:
            wait = self.paused and block and not self.stopping
            commands = self.channel.take(self.step, wait, timeout=DISK_RETRY_S if cmds.disk_paused else None)
            if not commands:
                if wait:
                    cmds.resume_when_writable()
                    continue
                return self.stopping
            for c in commands:
                self._apply(c)

    def end_epoch(self, metrics: dict | None = None) -> dict:
        """The epoch `self.epoch` ended: validate (or take the driver's `metrics`: val_loss, val_acc and any
        other numbers), feed metric-driven schedules and early stopping, log the epoch. Returns its event."""
        p, val = self.parts, self.validation
        self.read_losses()
        out = {"train_loss": self.recorder.epoch_mean()}
        epochs = p.cfg["epochs"]
        last = self.epoch + 1 >= epochs
        if p.averaging is not None:
            fields = p.averaging.after_epoch()  # SWA takes this epoch's weights before they are evaluated
            if fields is not None:
                self.emit("swa", **fields)
        observed = val.evaluate is None
        if val.evaluate is not None and ((self.epoch + 1) % p.cfg["engine"]["eval_every"] == 0 or last):
            ev = val.raw("epoch")
            out |= {"val_loss": ev["loss"], "val_acc": ev["acc"]}
            val.averaged("epoch")
            observed = True
        if metrics or (self.dist is not None and val.evaluate is None):
            out |= self._given_metrics(metrics or {})
        if observed:
            p.schedules.observe(out, self.step)
            if p.scheduler is not None and p.scheduler.unit == "epoch":
                self._step_scheduler(out)
            elif self.step < self._total:
                self.writer.advance(self.step)  # a metric-driven schedule may have moved
            val.early_stop(out)
        if self.dist is not None:
            from schedtui.engine.ddp_run import ranks_in_sync

            out["ranks_in_sync"] = ranks_in_sync(self)
        every = p.cfg["engine"].get("checkpoint_every", 0)
        self.checkpoint_due = bool(every) and (self.epoch + 1) % every == 0 and not last
        active = self.active_seconds()
        done = self.step
        eta = active / done * (self._total - done) if done else None
        ev = self.emit("epoch", epoch=self.epoch, epochs=epochs, elapsed_s=round(active, 3),
                       eta_s=None if eta is None else round(eta, 1),
                       samples_per_s=round(self.samples / active, 2) if active > 0 and self.samples else None, **out)
        self.epoch += 1
        self.recorder.epoch_losses = []
        return ev

    def _given_metrics(self, metrics: dict) -> dict:
        """The driver's own metrics (val_loss, val_acc, others): the raw model's evaluation; under DDP the mean
        over the ranks, so every rank decides the same (plateaus, early stopping)."""
        given = {k: number(k, v) for k, v in metrics.items()}
        if self.dist is not None:
            every = self.dist.gather(given)
            given = {k: sum(g.get(k, math.nan) for g in every) / len(every) for k in sorted(set().union(*every))}
        out = {}
        if "val_loss" in given or "val_acc" in given:
            loss, acc = given.pop("val_loss", math.nan), given.pop("val_acc", math.nan)
            self.validation.record("raw", loss, acc, "epoch", given)
            out = {"val_loss": loss, "val_acc": acc}
        return out | given

    def finish(self, status: str | None = None, error: BaseException | None = None) -> str:
        """End the run once: the final checkpoint (not after a crash), the `end` event, the log closed."""
        with self._finish_lock:
            if self._finished:
                return self.status
            self._finished = True
        if self.watch is not None:
            self.watch.stop()
        pending = [p[0] for p in self.recorder.pending]
        missing: dict = {}
        try:
            self.read_losses()
        except Exception:  # the device (or a rank) failed: the steps still pending are marked missing
            if pending:
                missing = {"missing": [pending[0], pending[-1]]}
        if error is not None:
            status = "crashed"
            self._record_error(error)
        self._wait_for_disk()  # a full disk: the end waits until what is held in memory can be written
        status = status or self.stopping or "completed"
        if status != "crashed" and self._checkpoint_at_end:
            try:
                self.checkpoint(status)
            except Exception as e:  # a final checkpoint that fails is a warning, never a lost end
                self.emit("warning", message=f"final checkpoint not written: {type(e).__name__}: {e}")
        self.status = status
        try:
            reason = {"reason": self.end_reason} if self.end_reason else {}
            if self.stopped_by is not None and status in ("stopped", "interrupted"):
                reason["by"] = self.stopped_by
            self.emit("end", status=status, epochs_completed=self.epoch, elapsed_s=round(self.active_seconds(), 3),
                      **reason, **missing, **self.best)
            self.log.close()
        except RuntimeError:  # the interpreter is exiting and closed the log first
            pass
        except UserError as e:  # the disk filled up again at the very end: say what is missing
            print(f"schedtui: {e}", file=sys.stderr)
        self.channel.close(f"the run has ended ({status})")
        if self.watch is not None:
            self.watch.close()
        return status

    def _wait_for_disk(self) -> None:
        """Before the run ends: while the log cannot be written, wait (trying again) rather than lose its tail."""
        try:
            self.log.flush()  # what is still in memory is tried now: a full disk shows here, not at the end event
        except UserError:  # (LogError) it could not be written: wait below
            pass
        said = False
        while self.log.failed is not None and self.log.retry() is not None:
            if not said:
                said = True
                self.emit("pause", reason=f"cannot write the log ({self.log.failed}) at the end of the run; free space "
                                          "and it ends by itself", disk=True)
            time.sleep(DISK_RETRY_S)
        if said:
            self.emit("resume", reason="the disk takes writes again")

    def nonfinite(self, step: int, value: float, skipped: bool = False) -> None:
        """A non-finite loss at `step` (`skipped`: the driver kept it from reaching the weights): warn, then
        pause, stop or go on as `engine.on_nonfinite` says."""
        action = {"pause": "pausing", "stop": "stopping", "warn": "continuing"}[self.on_nonfinite]
        kept = "; that update was not applied to the weights" if skipped else ""
        self.emit("warning", step, message=f"non-finite loss ({value}) at step {step}{kept}; {action}", loss=value)
        self.log.flush(wait=False)
        if self.on_nonfinite == "pause" and not self.paused:
            self.commands.pause("non-finite loss")
        elif self.on_nonfinite == "stop":
            self.stopping = self.stopping or "stopped"

    def scheduler_stepped(self) -> None:
        """The adopted scheduler moved (stepped here, or by the framework that steps it: `engine.adopted`'s
        `observe_scheduler`): write the knobs it drives — an edit's value where one overrides it — for the next
        update."""
        self.parts.schedules.forget()
        self.writer.force(self.parts.scheduler.knobs)
        if self.step < self._total:
            self.writer.advance(self.step)

    def read_losses(self) -> None:
        """Read every loss still pending (one sync) into the log; a non-finite one warns, pauses or stops."""
        bad = self.recorder.read(self.epoch)
        if bad is not None:
            self.nonfinite(*bad, skipped=self.updates_guarded)

    def write_knobs(self, modes: bool = False) -> None:
        """Write the next update's knob values now (after an edit: `modes`, module knobs learn their mode)."""
        if modes:
            self.writer.refresh_modes()
        if self.step < self._total:
            self.writer.advance(self.step)

    def checkpoint(self, reason: str = "manual") -> dict:
        """Save the whole training state at this boundary (`engine.checkpoint.write`: after the log holds every
        step up to it; non-finite weights aside; a full disk pauses the run)."""
        from schedtui.engine import checkpoint

        self.checkpoint_due = False
        self.read_losses()
        return checkpoint.write(self, reason)

    # ---- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The core's part of a checkpoint (plain values and tensors; see `engine.checkpoint`)."""
        p, r = self.parts, self.rerun
        return {
            "step": self.step, "epoch": self.epoch, "model": p.model.state_dict(),
            "optimizer": ({n: o.state_dict() for n, o in p.optimizer.items()} if isinstance(p.optimizer, dict)
                          else p.optimizer.state_dict()),
            "schedules": p.schedules.state_dict(), "knobs": dict(self.values),
            "engine": {"samples": self.samples, "active_s": self.active_seconds(), "best": dict(self.best),
                       "epoch_losses": list(self.recorder.epoch_losses), "plan": [[s, c, dict(a)] for s, c, a in self.plan],
                       "rerun": None if r is None else {"stop_at": r.stop_at, "stop_reason": r.stop_reason,
                                                        "pause_at_stop": r.pause_at_stop}},
            "stateful": {name: obj.state_dict() for name, obj in self.stateful.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Back to a checkpoint's state (before `begin`); the caller checked that it fits this run."""
        from schedtui.engine.checkpoint import load_optimizer

        p, eng = self.parts, state["engine"]
        p.model.load_state_dict(state["model"])
        if isinstance(p.optimizer, dict):
            for name, opt in p.optimizer.items():
                load_optimizer(opt, state["optimizer"][name])
        else:
            load_optimizer(p.optimizer, state["optimizer"])
        for name, obj in self.stateful.items():
            obj.load_state_dict(state["stateful"][name])
        p.schedules.load_state_dict(state["schedules"])
        for k, v in state["knobs"].items():
            p.knobs[k].set(v)
        self.writer = KnobWriter(p.knobs, p.schedules, p.adopted)
        self.writer.values = dict(state["knobs"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.recorder.samples, self.validation.best = eng["samples"], dict(eng["best"])
        self.recorder.epoch_losses = list(eng["epoch_losses"])
        self.clock.offset = float(eng["active_s"])
        self.plan = [(s, c, dict(a)) for s, c, a in eng["plan"]]
        if eng["rerun"] is not None:
            self.rerun = Rerun(**eng["rerun"])
            if self.on_nonfinite == "pause":
                self.on_nonfinite = "warn"

    # ---- inside -----------------------------------------------------------------------------------
    def _due(self) -> bool:
        if self.paused or self.checkpoint_due or self.channel.due(self.step) or self.log.failed is not None:
            return True
        if self.plan and self.plan[0][0] <= self.step:
            return True
        r = self.rerun
        return r is not None and r.stop_at is not None and self.step >= r.stop_at

    def _apply(self, c) -> None:
        handler = self._handlers.get(c.name)
        result = error = None
        try:
            if handler is None:
                raise UserError(f"unknown command {c.name!r}; valid: {', '.join(OPS)}")
            try:
                inspect.signature(handler).bind(**c.args)
            except TypeError as e:
                raise UserError(f"{c.name}: {e}") from None
            self._origin = c.by
            result = handler(**c.args)
        except UserError as e:
            error = e
        except Exception as e:  # a command never ends the run: its sender gets the reason
            error = UserError(f"{c.name} failed: {type(e).__name__}: {e}")
            self.emit("warning", message=f"command {c.name} failed and changed nothing after the failure: "
                                         f"{type(e).__name__}: {e}; the run goes on")
        finally:
            self._origin = None
        c.answer(result, error)

    def _apply_plan(self) -> None:
        while self.plan and self.plan[0][0] <= self.step:
            step, command, args = self.plan.pop(0)
            try:
                if command == "edit":
                    self.commands.apply_edit(planned=True, **args)
                else:
                    self._handlers[command](**args)
            except UserError as e:  # a preset's planned edit that does not fit the run as it went
                self.emit("warning", message=f"planned {command} at step {step} not applied: {e}")
        r = self.rerun
        if r is not None and r.stop_at is not None and self.step >= r.stop_at:
            r.stop_at = None
            if r.pause_at_stop:
                self.commands.drop_plan(r.stop_reason)
                self.commands.pause(r.stop_reason)
            else:
                self.stopping, self.end_reason = "stopped", r.stop_reason

    def _warn_drift(self, drifted: list) -> None:
        for knob, expected, actual in drifted:
            self.emit("warning", message=f"{knob} was changed outside schedtui at step {self.step}: expected {expected!r}, "
                                         f"the live value is {actual!r} (the log records the live value)",
                      knob=knob, expected=expected, actual=actual)

    def _step_scheduler(self, metrics: dict | None = None) -> None:
        """Step the user's own scheduler (adopted) and write the knobs it and the schedules drive."""
        self.parts.scheduler.step(metrics)
        self.scheduler_stepped()

    def _ranks_lost(self, ranks: list) -> None:
        with self._finish_lock:
            if self._finished:
                return
            self._finished = True
        crash.ranks_lost(self, ranks)

    def _record_error(self, error: BaseException) -> None:
        crash.record_error(self, error)
