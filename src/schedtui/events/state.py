"""The run as it stands after a sequence of events: a fold the live displays and replay share.

`RunState.apply(event)` updates the latest step, loss, knob values, throughput,
evaluation and status; it keeps no per-step history (displays keep their own,
downsampled). A damaged header (a config that is not a table, `epochs: "many"`)
or an event whose numbers are not numbers leaves those values unknown; nothing
here raises on what a log holds. Pure Python; no torch, textual or rich.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _count(v) -> int | None:
    """A header's count (epochs, steps per epoch), or None when a damaged one holds something else."""
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53 else None


@dataclass
class RunState:
    preset: str = ""
    device: str = ""
    epochs: int = 0
    steps_per_epoch: int | None = None
    total_steps: int | None = None
    status: str = "running"  # running | paused | completed | stopped | crashed | interrupted
    step: int = 0
    epoch: int = 0
    loss: float | None = None
    knobs: dict = field(default_factory=dict)
    samples_per_s: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0
    last_eval: dict | None = None
    last_epoch: dict | None = None
    best_val_acc: float | None = None
    edits: int = 0
    warnings: list = field(default_factory=list)
    error: str | None = None
    user_error: bool = False  # the error was a one-line UserError (bad input from the user's code)
    pause_reason: str | None = None
    end: dict | None = None
    swa: bool = False  # SWA is averaging
    swa_started: int | None = None  # the step it last started at
    evals: dict = field(default_factory=dict)  # model (raw, swa, ema) -> its last evaluation
    early_stop: dict | None = None
    _mark: tuple = field(default=(0.0, 0), repr=False)  # (time, step) the ETA's rate counts from

    @classmethod
    def from_header(cls, header: dict) -> "RunState":
        cfg = header.get("config")
        cfg = cfg if isinstance(cfg, dict) else {}
        epochs, spe = _count(cfg.get("epochs", 0)), _count(header.get("steps_per_epoch"))
        return cls(preset=str(header.get("preset", "")), device=str(header.get("device", "")), epochs=epochs or 0,
                   steps_per_epoch=spe, total_steps=spe and epochs is not None and spe * epochs or None)

    def apply(self, ev: dict) -> None:
        t = ev.get("type")
        time = ev.get("time")
        if _number(time):
            self.elapsed_s = time

        if t == "step":
            self.step, self.epoch, self.loss = ev["step"], ev.get("epoch", self.epoch), ev.get("loss")
            self.knobs = ev.get("knobs", self.knobs)
            self.samples_per_s = ev.get("samples_per_s", self.samples_per_s)
            t0, s0 = self._mark  # the rate since the start or the last resume: paused time is not work
            if self.total_steps and _number(self.step) and self.step > s0 and self.elapsed_s > t0:
                self.eta_s = (self.elapsed_s - t0) / (self.step - s0) * (self.total_steps - self.step)
        elif t == "eval":
            model = ev.get("model", "raw")
            self.evals[model if isinstance(model, str) else str(model)] = ev
            if model != "raw":
                return
            self.last_eval = ev
            if _number(ev.get("acc")) and (self.best_val_acc is None or ev["acc"] > self.best_val_acc):
                self.best_val_acc = ev["acc"]
        elif t == "epoch":
            self.last_epoch = ev
        elif t == "edit":
            self.edits += 1
        elif t == "pause":
            self.status, self.pause_reason = "paused", ev.get("reason")
        elif t == "resume":
            self.status, self.pause_reason = "running", None
            if "checkpoint" in ev:  # `schedtui resume` continued an ended run from a checkpoint
                self.end = None
            self._mark = (self.elapsed_s, self.step)
        elif t == "warning":
            self.warnings.append(ev.get("message", ""))
        elif t == "error":
            self.error = ev.get("message")
            self.user_error = bool(ev.get("user_error"))
        elif t == "swa":
            if ev.get("op") == "start":
                self.swa, self.swa_started = True, ev.get("step")
            elif ev.get("op") == "stop":
                self.swa = False
        elif t == "early_stop":
            self.early_stop = ev
        elif t == "end":
            self.status, self.end = ev.get("status", "completed"), ev
