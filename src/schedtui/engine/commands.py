"""The commands a run takes at its step boundary: pause, resume, edit, preview, describe, validate, checkpoint, stop, swa.

`Commands(core)` belongs to one run core (`engine.core.RunCore`), which applies
them at the boundary its channel says (`engine.channel`), on the training thread;
each is a public method whose keyword arguments are the command's, and each
returns the event it produced (read-only queries return a table). They use only
the core's public state. Every event a command makes carries `by` (who sent it)
through `core.emit`. A command that cannot apply raises a one-line UserError and
changes nothing (an edit a knob refuses is undone).

A full disk pauses the run here too (`pause_for_disk`): the log or a checkpoint
could not be written; every event stays in memory, and the run goes on by
itself once the disk takes writes again (`resume` refuses until it does).
torch only through the core; no textual/rich.
"""

from __future__ import annotations

from schedtui.errors import UserError

OPS = ("pause", "resume", "edit", "validate", "checkpoint", "stop", "preview", "describe", "swa")
SWA_OPS = ("start", "stop", "update_bn")


class Commands:
    def __init__(self, core):
        self.core = core
        self.disk_paused: str | None = None  # what a full disk stopped (the run is paused until it can be written)
        self.checkpoint_owed = False  # a due checkpoint that a full disk stopped: written once it can be

    # ---- pausing --------------------------------------------------------------------------------------
    def pause(self, reason: str = "user") -> dict:
        return self._pause(reason)

    def _pause(self, reason: str, **fields) -> dict:
        core = self.core
        if core.paused:
            return {"type": "pause", "step": core.step, "already": True}
        core.paused, core.status = True, "paused"
        core.clock.pause()
        ev = core.emit("pause", reason=reason, **fields)
        core.log.flush(wait=False)
        return ev

    def resume(self) -> dict:
        core = self.core
        if not core.paused:
            return {"type": "resume", "step": core.step, "already": True}
        if self.disk_paused and not self.disk_writable():
            raise UserError(f"the run stays paused: {self.disk_paused} still fails; free space on that disk first")
        return self.resume_now()

    def resume_now(self, by_itself: bool = False) -> dict:
        core = self.core
        core.clock.resume()
        core.paused, core.status = False, "running"
        if self.disk_paused:
            self.disk_paused = None
            core.checkpoint_due = core.checkpoint_due or self.checkpoint_owed
            self.checkpoint_owed = False
        return core.emit("resume", **({"reason": "the disk takes writes again"} if by_itself else {}))

    def pause_for_disk(self, what: str) -> None:
        """A full disk (the log or a checkpoint cannot be written): pause, keep every event in memory, go on by
        itself once writing works again (or on resume). In a data-parallel job (rank 0 writes) the pause and the
        resume go to every rank through the channel, so all of them wait at the same step."""
        if self.disk_paused is not None:
            return
        self.disk_paused = what
        reason = f"{what}; free space and the run goes on by itself"
        if self.core.dist is not None:
            self.core.send("pause", reason=reason, by="disk")
        elif not self.core.paused:
            self._pause(reason, disk=True)

    def resume_when_writable(self) -> None:
        """While a full disk holds the run: go on once it takes writes again."""
        if self.disk_paused and self.disk_writable():
            if self.core.dist is not None:
                self.core.send("resume", by="disk")
            else:
                self.resume_now(by_itself=True)

    def disk_writable(self) -> bool:
        log = self.core.log
        if log.failed is not None and log.retry() is not None:
            return False
        if self.checkpoint_owed and self.core.dist is None:  # (a data-parallel job's checkpoint is every rank's)
            self.core.checkpoint_due = True  # retried at the next boundary, once running
        return True

    # ---- edits --------------------------------------------------------------------------------------
    def edit(self, knob: str, op: str, value=None, factor=None, spec=None) -> dict:
        if self.core.rerun is not None:  # a person steers a rerun: from here on it is a new run
            self.drop_plan(f"live edit of {knob}")
        return self.apply_edit(knob, op, value, factor, spec)

    def apply_edit(self, knob: str, op: str, value=None, factor=None, spec=None, planned: bool = False,
                   by: str | None = None) -> dict:
        """An edit from a person, a plan (`planned`) or the run itself (`by`: the lr's SWA phase says "swa")."""
        core = self.core
        schedules = core.parts.schedules
        saved = schedules.state_dict()
        fields = schedules.edit(knob, op, step=core.step, current=core.values, value=value, factor=factor, spec=spec)
        try:
            core.write_knobs(modes=True)
        except Exception:  # a knob that cannot take the value: the edit is undone, the values written back
            schedules.load_state_dict(saved)
            core.write_knobs(modes=True)
            raise
        ev = core.emit("edit", **fields, **({"planned": True} if planned else {}), **({"by": by} if by else {}))
        core.log.flush(wait=False)
        return ev

    def drop_plan(self, why: str) -> None:
        """A rerun branches from its source here: what the source did later no longer applies."""
        core = self.core
        edits = sum(1 for p in core.plan if p[1] == "edit")
        later = f"; its {edits} later edit{'s' if edits != 1 else ''} will not be applied" if edits else ""
        core.emit("warning", message=f"{why}: the rerun branches from its source at step {core.step}{later}")
        core.plan, core.rerun = [], None
        core.on_nonfinite = core.parts.cfg["engine"]["on_nonfinite"]

    def preview(self, knob: str, op: str, value=None, factor=None, spec=None, points: int = 64) -> dict:
        """An edit's effect as curves (before/after), applied to nothing; raises UserError like `edit`."""
        core = self.core
        return core.parts.schedules.preview(knob, op, step=core.step, current=core.values, points=points,
                                            value=value, factor=factor, spec=spec)

    def describe(self) -> dict:
        """Every knob: what drives it, whether an edit overrides it, its next change, and its bounds."""
        core = self.core
        s, step, out = core.parts.schedules, core.step, {}
        for k, knob in core.parts.knobs.items():
            nxt = s.next_change(k, step)
            out[k] = {"value": core.values.get(k), "schedule": s.describe(k), "override": s.overridden(k),
                      "next": None if nxt is None else {"step": nxt[0], "value": nxt[1], "every_step": nxt[0] == step + 1},
                      "bounds": str(knob.bounds), "doc": knob.doc}
        return {"step": step, "knobs": out}

    # ---- the rest ---------------------------------------------------------------------------------
    def validate(self) -> dict:
        core = self.core
        if core.validation.evaluate is None:
            raise UserError("validate: this run has no validation data (your own loop reports metrics with mon.epoch)")
        core.read_losses()
        return core.validation.raw("manual")

    def checkpoint(self, reason: str = "manual") -> dict:
        return self.core.checkpoint(reason)

    def stop(self, status: str = "stopped") -> dict:
        core = self.core
        if status not in ("stopped", "interrupted"):
            raise UserError(f"stop: status must be stopped or interrupted, got {status!r}")
        if core.stopping != "interrupted":  # a signal's interrupted is not undone by a later plain stop
            core.stopping = status
            core.stopped_by = core.origin
        return {"type": "stop", "step": core.step, "status": core.stopping}

    def swa(self, op: str) -> dict:
        core = self.core
        avg = core.parts.averaging
        if op not in SWA_OPS:
            raise UserError(f"swa: op must be one of {', '.join(SWA_OPS)}, got {op!r}")
        if op == "start":
            saved = avg.state_dict()
            fields = avg.start(core.step)
            try:
                self.apply_edit("lr", "schedule", spec=avg.lr_spec(core.values["lr"]), by="swa")
            except UserError:
                avg.load_state_dict(saved)
                raise
            ev = core.emit("swa", **fields)
        elif op == "stop":
            ev = core.emit("swa", **avg.stop())
        else:
            bn_data = core.validation.bn_data
            if bn_data is None or not avg.update_bn(bn_data):
                raise UserError("swa update_bn: no SWA model with BatchNorm to update (start SWA first)")
            ev = core.emit("swa", op="update_bn")
            core.validation.averaged("update_bn", only="swa")
        core.log.flush(wait=False)
        return ev
