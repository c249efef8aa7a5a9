"""The engine's command path: what happens at a step boundary, and every command.

`Commands` is the half of `Engine` that runs at step boundaries, on the engine
thread. Commands (pause, resume, edit, validate, checkpoint, stop) are applied in
`_apply_pending`, and each applied command becomes an event carrying the step at
which it applied (DESIGN.md "Steps, epochs and edits": the knob values for update
k+1 are computed when step == k). The queries `preview` (an edit's curve, applied
to nothing) and `describe` (every knob's schedule and next change) answer there
too. Planned edits (the preset's `[[edits]]`, or a rerun's logged edits) and a
rerun's manual validations are applied in the same place, at exactly their step,
before the commands queued by people; so is a checkpoint due by
`engine.checkpoint_every`, after the plan (so a resume never applies a planned edit
twice). One place, so that with DDP every rank applies the same commands at the
same step. torch only (through the engine); must not import textual or rich.
"""

from __future__ import annotations

import queue
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from schedtui.errors import UserError

OPS = ("pause", "resume", "edit", "validate", "checkpoint", "stop", "preview", "describe", "swa")


@dataclass
class Rerun:
    """How a rerun differs from a fresh run of the same config (see `schedtui.commands.rerun`)."""

    plan: list = field(default_factory=list)  # (step, command, args) in the source's order: edits, manual validations
    stop_at: int | None = None  # the step where the source run ended early, or --until
    stop_reason: str = ""
    pause_at_stop: bool = False  # the UI pauses there so a person can branch; headless stops


class Commands:
    """Mixed into `Engine`; uses its state (parts, log, step, _plan, _rerun, _paused, ...)."""

    def _apply_pending(self, block: bool = True) -> None:
        """Apply the plan's entries for this step, then every queued command; while paused (and `block`),
        wait here for more. The losses still pending are read first, so the log has every step up to
        here before what applies at this boundary."""
        if not self._due():
            return  # the common case, every step: nothing to do, and only a few attribute reads to find out
        self._read_losses()
        self._apply_plan()
        if self._checkpoint_due:  # checkpoint_every: after the plan, so a resume does not apply it twice
            self._checkpoint("epoch")
        while True:
            waiting = self._paused and block and not self._stop_status  # resume and stop arrive here too
            try:
                command, args, fut = self._commands.get() if waiting else self._commands.get_nowait()
            except queue.Empty:
                return
            result = error = None
            args = dict(args)
            self._origin = args.pop("by", None)  # who sent it (ui, attach, ctl): recorded on its events
            try:
                result = getattr(self, f"_cmd_{command}")(**args)
            except UserError as e:
                error = e
            except TypeError as e:  # wrong arguments for the command
                error = UserError(f"{command}: {e}")
            finally:
                self._origin = None
            _settle(fut, result, error)

    def _due(self) -> bool:
        """Whether anything applies at this boundary: a queued command, a plan entry or checkpoint due, a
        rerun's stop, or a pause (which waits for commands)."""
        if self._paused or self._checkpoint_due or not self._commands.empty():
            return True
        if self._plan and self._plan[0][0] <= self.step:
            return True
        r = self._rerun
        return r is not None and r.stop_at is not None and self.step >= r.stop_at

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

    def _edit(self, knob: str, op: str, value=None, factor=None, spec=None, planned: bool = False, by: str | None = None) -> dict:
        """Apply an edit; `by` names what made it when not a person or a plan (the lr's SWA phase: "swa")."""
        fields = self.parts.schedules.edit(knob, op, step=self.step, current=self._applied, value=value, factor=factor, spec=spec)
        self._apply_knobs()
        ev = self._emit("edit", **fields, **({"planned": True} if planned else {}), **({"by": by} if by else {}))
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
        return self._checkpoint("manual")

    def _checkpoint(self, reason: str) -> dict:
        """Save the whole training state at this step boundary (see `engine.checkpoint`)."""
        from schedtui.engine import checkpoint

        self._checkpoint_due = False
        self._read_losses()  # every loss up to here is in the log and in this epoch's mean
        path = self.run_dir / "checkpoints" / checkpoint.file_name(self.step)
        try:
            checkpoint.save(path, checkpoint.capture(self, reason))
        except Exception as e:  # disk full, or a component whose state cannot be saved: training goes on
            why = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
            ev = self._emit("warning", message=f"checkpoint at step {self.step} not written: {why}")
            if reason == "manual":
                raise UserError(ev["message"]) from None
            return ev
        ev = self._emit("checkpoint", path=str(path), reason=reason)
        self.log.flush(wait=False)
        return ev

    def _cmd_stop(self, status: str = "stopped") -> dict:
        if status not in ("stopped", "interrupted"):
            raise UserError(f"stop: status must be stopped or interrupted, got {status!r}")
        if self._stop_status != "interrupted":  # a signal's interrupted is not undone by a later plain stop
            self._stop_status = status
        return {"type": "stop", "step": self.step, "status": self._stop_status}

    def _refuse_pending(self) -> None:
        while True:
            try:
                _, _, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            _settle(fut, None, UserError(f"the run has ended ({self.status})"))

def _settle(fut: Future, result, error: Exception | None) -> None:
    """Answer a command's future; one whose sender stopped waiting (cancelled it) is left alone: the
    command itself has applied."""
    try:
        if error is None:
            fut.set_result(result)
        else:
            fut.set_exception(error)
    except InvalidStateError:
        pass
