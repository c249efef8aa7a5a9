"""The one fold of a run's event log: what the run is, or was, after a sequence of events.

Every view of a run takes its run-level facts from `RunState`: the live screen and
the headless display (event by event, as they arrive), replay (`Timeline` feeds it
while it indexes a file), diff (`compare`), export, and the headless and replay
summaries. What a consumer keeps of its own (diff's step-by-step comparison, the
CSV rows, the timeline's buckets and file index) is not here; a fact about the run
is only here, so every view says the same.

`RunState.apply(event)` keeps:
- where the run is: status, step, epoch, the last loss and knob values, throughput,
  elapsed time, an ETA that does not count paused time;
- evaluations: the last of each model ("raw", "swa", "ema"). The raw model's is the
  validation ("val"); `final_eval` is the validation of the model the run ended
  with: after early stopping restored the best weights, the evaluation of the
  restored model (`reason: "restored_best"`), never the discarded last model's.
  SWA and EMA evaluations are their own and never count as the best validation;
- the best validation, by `best_metric` as the engine picks it: early stopping's
  metric when it watches val_loss or val_acc, else val_acc where the run has an
  accuracy, else val_loss. When early stopping watches it, the best is early
  stopping's: ranked as it ranks (the epoch's evaluations; better by more than
  `min_delta`; a tie keeps the earlier), and its `early_stop` event's record wins,
  so the best is the evaluation of the weights it restores. Otherwise the engine's
  rule (a tie on accuracy goes to the later evaluation) and the `end` event's
  `best_*` fields win when it has them;
- epochs completed, edits (the events: export folds them into a preset), warnings,
  the error, pauses, resumes, SWA (averaging or not, the steps it started at),
  early stopping, the last checkpoint, and the `end` event.

Superseded steps: a `resume` from a checkpoint at step k (`schedtui resume`)
restarts the run at k, so whatever the log recorded at a step after k before that
resume (steps, evaluations, epochs, edits, SWA, warnings, an end: a run killed past
its last checkpoint, or resumed from an earlier one) is not part of the run: the
later copy wins. `supersedes(ev)` is that rule; the fold rolls its facts back to
what the events at or before step k said, and every consumer that keeps its own
per-step data drops the superseded copies by the same rule (`events.supersede`).
`superseded` lists the ranges of steps so dropped. A fold that begins at such a
resume (a live view of a resumed run) is `partial`: the end event's record of the
best then wins, and a summary of the whole run reads the log.

A damaged header (a config that is not a table, `epochs: "many"`) or an event
whose fields are not what they should be leaves those facts unknown; nothing here
raises on what a log holds. Pure Python; no torch, textual or rich.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AVERAGED_MODELS = ("swa", "ema")
_REAL = frozenset({int, float})


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v) -> bool:
    return _number(v) and v == v and v not in (float("inf"), float("-inf"))


def _count(v) -> int | None:
    """A header's count (epochs, steps per epoch), or None when a damaged one holds something else."""
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53 else None


def supersedes(ev: dict) -> int | None:
    """The checkpoint's step k when `ev` is a resume from a checkpoint (it supersedes what was logged
    before it at steps after k), else None."""
    if ev.get("type") != "resume" or "checkpoint" not in ev:
        return None
    return _count(ev.get("step"))


def superseded_by(ev: dict, k: int) -> bool:
    """Whether `ev`, logged before a resume from a checkpoint at step k, is superseded by it."""
    s = ev.get("step")
    return isinstance(s, int) and not isinstance(s, bool) and s > k


@dataclass
class RunState:
    # from the header
    preset: str = ""
    device: str = ""
    run_id: str = ""
    epochs: int = 0
    steps_per_epoch: int | None = None
    total_steps: int | None = None
    watched: str | None = None  # the validation metric early stopping watches (val_loss, val_acc), if any
    min_delta: float = 0.0  # early stopping's: an improvement is by more than this
    # where the run is
    status: str = "running"  # running | paused | completed | stopped | crashed | interrupted
    step: int = 0
    epoch: int = 0
    loss: float | None = None
    knobs: dict = field(default_factory=dict)
    samples_per_s: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0
    # what it did
    epochs_completed: int = 0
    last_epoch: dict | None = None
    evals: dict = field(default_factory=dict)  # model (raw, swa, ema) -> its last validation
    last_eval: dict | None = None  # the raw model's last validation
    best_metric: str | None = None
    best_val_acc: float | None = None
    best_val_loss: float | None = None
    best_step: int | None = None
    best_eval: dict | None = None  # the raw evaluation that is the best, when this fold saw it
    edit_events: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    error: str | None = None
    user_error: bool = False  # the error was a one-line UserError (bad input from the user's code)
    pause_reason: str | None = None
    pauses: int = 0
    resumes: int = 0  # resumes from a checkpoint (`schedtui resume`)
    swa: bool = False  # SWA is averaging
    swa_started: int | None = None  # the step it last started at
    swa_starts: list = field(default_factory=list)  # every step it started at
    early_stop: dict | None = None
    last_checkpoint: dict | None = None
    end: dict | None = None
    # about the log
    superseded: list = field(default_factory=list)  # (first, last) steps a resume superseded
    partial: bool = False  # the first event folded was a resume from a checkpoint: the run before it is not here
    resume_points: list = field(default_factory=list)  # (seq, step) of every resume from a checkpoint
    _mark: tuple = field(default=(0.0, 0), repr=False)  # (time, step) the ETA's rate counts from
    _kept: list = field(default_factory=list, repr=False)  # the events after the header but steps, for a rollback
    _replaying: bool = field(default=False, repr=False)
    _stepped: bool = field(default=False, repr=False)  # a step event has been taken

    @classmethod
    def from_header(cls, header: dict) -> "RunState":
        cfg = header.get("config")
        cfg = cfg if isinstance(cfg, dict) else {}
        epochs, spe = _count(cfg.get("epochs", 0)), _count(header.get("steps_per_epoch"))
        es = cfg.get("early_stopping")
        es = es if isinstance(es, dict) else {}
        watched, delta = es.get("metric"), es.get("min_delta", 0.0)
        return cls(preset=str(header.get("preset", "")), device=str(header.get("device", "")),
                   run_id=str(header.get("run_id", "")), epochs=epochs or 0, steps_per_epoch=spe,
                   total_steps=spe and epochs is not None and spe * epochs or None,
                   watched=watched if watched in ("val_loss", "val_acc") else None,
                   min_delta=delta if _finite(delta) else 0.0)

    # ---- questions ------------------------------------------------------------------------------
    @property
    def edits(self) -> int:
        return len(self.edit_events)

    @property
    def outcome(self) -> str | None:
        """How the run ended (the end event's status), or None while it has no end (running, or killed)."""
        return self.status if self.end is not None else None

    @property
    def run_seconds(self) -> float:
        """Seconds the run trained: the end event's (paused time left out), else the time of the last event."""
        s = (self.end or {}).get("elapsed_s")
        return s if _number(s) else self.elapsed_s

    @property
    def final_eval(self) -> dict | None:
        """The validation of the model the run ended with (see the module docstring); None when the log does
        not hold it (an older log whose early stopping restored weights it never evaluated again)."""
        es, last = self.early_stop, self.last_eval
        if es is None or es.get("restored") is not True or (last is not None and last.get("reason") == "restored_best"):
            return last
        best = self.best_eval
        return best if best is not None and best.get("step") == es.get("best_step") else None

    @property
    def restored_best(self) -> bool:
        """Whether the run ended with the best weights put back by early stopping."""
        return self.early_stop is not None and self.early_stop.get("restored") is True

    def averaged(self) -> dict:
        """model -> its last validation, for the averaged models (SWA, EMA, any other), in a fixed order."""
        others = sorted(m for m in self.evals if m not in AVERAGED_MODELS and m != "raw")
        names = [m for m in AVERAGED_MODELS if m in self.evals] + others
        return {m: self.evals[m] for m in names}

    def finals(self) -> list[tuple[str, object]]:
        """The run's facts that every summary shows, as (label, raw value), in one order: what `schedtui diff`
        compares and what the headless and replay summaries print."""
        fin = self.final_eval or {}
        rows = [
            ("status", self.outcome),
            ("steps", self.step),
            ("epochs completed", self.epochs_completed),
            ("final val loss", fin.get("loss")),
            ("final val acc", fin.get("acc")),
            ("best by", self.best_metric),
            ("best val loss", self.best_val_loss),
            ("best val acc", self.best_val_acc),
            ("best step", self.best_step),
        ]
        for m, ev in self.averaged().items():
            rows += [(f"final {m} val loss", ev.get("loss")), (f"final {m} val acc", ev.get("acc"))]
        context = [("edits", self.edits), ("warnings", len(self.warnings)), ("elapsed s", (self.end or {}).get("elapsed_s"))]
        return rows + context

    # ---- the fold -------------------------------------------------------------------------------
    def apply(self, ev: dict) -> bool:
        """Fold in the next event; False when it is ignored: a step without an integer step number, or one
        not after the last step taken (a repeated line: the first copy counts)."""
        t = ev.get("type")
        if t == "step":
            return self._step(ev)
        time = ev.get("time")
        if _number(time):
            self.elapsed_s = time
        if t == "eval":
            self._eval(ev)
        elif t == "epoch":
            self.last_epoch = ev
            e = _count(ev.get("epoch"))
            if e is not None:
                self.epochs_completed = e + 1
        elif t == "edit":
            self.edit_events.append(ev)
        elif t == "pause":
            self.status, self.pause_reason = "paused", ev.get("reason")
            self.pauses += 1
        elif t == "resume":
            self._resume(ev)
        elif t == "warning":
            self.warnings.append(ev.get("message", ""))
        elif t == "error":
            self.error = ev.get("message")
            self.user_error = bool(ev.get("user_error"))
        elif t == "swa":
            op = ev.get("op")
            if op == "update":
                return  # can be every step: nothing to keep
            if op == "start":
                self.swa, self.swa_started = True, ev.get("step")
                if _count(ev.get("step")) is not None:
                    self.swa_starts.append(ev["step"])
            elif op == "stop":
                self.swa = False
        elif t == "early_stop":
            self._early_stop(ev)
        elif t == "checkpoint":
            self.last_checkpoint = ev
        elif t == "end":
            self._end(ev)
        if not self._replaying:
            self._kept.append(ev)
        return True

    def _step(self, ev: dict) -> bool:
        # every step of every log goes through here: the common types are checked first, and cheaply
        s = ev.get("step")
        if type(s) is not int or (s <= self.step and self._stepped):
            return False  # a damaged line: no step to put it at (a bool is not one), or a step again
        self.step, self._stepped = s, True
        time, e, loss = ev.get("time"), ev.get("epoch"), ev.get("loss")
        if type(time) in _REAL or _number(time):
            self.elapsed_s = time
        if type(e) is int:
            self.epoch = e
        self.loss = loss if type(loss) in _REAL or _number(loss) else None
        knobs, sps = ev.get("knobs"), ev.get("samples_per_s")
        if type(knobs) is dict:
            self.knobs = knobs
        if type(sps) in _REAL or _number(sps):
            self.samples_per_s = sps
        if self.total_steps:
            t0, s0 = self._mark  # the rate since the start or the last resume: paused time is not work
            if s > s0 and self.elapsed_s > t0:
                self.eta_s = (self.elapsed_s - t0) / (s - s0) * (self.total_steps - s)
        return True

    def _eval(self, ev: dict) -> None:
        if ev.get("split", "val") != "val":
            return
        model = ev.get("model", "raw")
        model = model if isinstance(model, str) else str(model)
        self.evals[model] = ev
        if model != "raw":
            return  # SWA and EMA are their own: never the run's validation, never its best
        self.last_eval = ev
        reason = ev.get("reason", "epoch")
        if reason == "restored_best" or (self.watched and reason != "epoch"):
            return  # the best weights evaluated again, or an evaluation early stopping does not rank
        loss, acc = ev.get("loss"), ev.get("acc")
        metric = self.best_metric or self.watched or ("val_acc" if _finite(acc) else "val_loss" if _finite(loss) else None)
        value = acc if metric == "val_acc" else loss
        if metric is None or not _finite(value):
            return
        held = self.best_val_acc if metric == "val_acc" else self.best_val_loss
        if not _number(held):
            better = True
        elif metric == self.watched:  # early stopping's rule
            better = value > held + self.min_delta if metric == "val_acc" else value < held - self.min_delta
        else:  # the engine's
            better = value >= held if metric == "val_acc" else value < held
        if better:
            self.best_metric, self.best_val_acc, self.best_val_loss = metric, acc, loss
            self.best_step, self.best_eval = ev.get("step"), ev

    def _early_stop(self, ev: dict) -> None:
        """Early stopping's record of its best is the best (a log the fold missed evaluations of says so)."""
        self.early_stop = ev
        metric, step, best = ev.get("metric"), ev.get("best_step"), ev.get("best")
        if metric not in ("val_loss", "val_acc") or _count(step) is None or not _number(best) or step == self.best_step:
            return
        kept = self.best_eval if self.best_eval is not None and self.best_eval.get("step") == step else None
        self.best_metric, self.best_step, self.best_eval = metric, step, kept
        other = (kept or {}).get("acc" if metric == "val_loss" else "loss")
        self.best_val_loss, self.best_val_acc = (best, other) if metric == "val_loss" else (other, best)

    def _end(self, ev: dict) -> None:
        status = ev.get("status")
        self.status, self.end = status if isinstance(status, str) else "completed", ev
        done = _count(ev.get("epochs_completed"))
        if done is not None:
            self.epochs_completed = done
        ours = self.watched is not None and self.best_metric == self.watched and self.best_step is not None and not self.partial
        if ("best_metric" in ev or "best_val_acc" in ev) and not ours:  # the engine's record (older logs: by accuracy)
            metric = ev.get("best_metric", "val_acc")
            self.best_metric = metric if isinstance(metric, str) else None
            fields = (ev.get("best_val_acc"), ev.get("best_val_loss"), ev.get("best_step"))
            self.best_val_acc, self.best_val_loss, self.best_step = (v if v is None or _number(v) else None for v in fields)
            if self.best_eval is not None and self.best_eval.get("step") != self.best_step:
                self.best_eval = None

    def _resume(self, ev: dict) -> None:
        k = supersedes(ev)
        step = ev.get("step")
        if k is None:  # resumed after a pause
            self.status, self.pause_reason = "running", None
            self._mark = (self.elapsed_s, step if _count(step) is not None else self.step)
            return
        if not self._replaying:
            self.partial = self.partial or (not self._kept and not self._stepped)
            self._roll_back(k)
            seq = ev.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                self.resume_points.append((seq, k))
        self.step, self.loss = k, None
        e = _count(ev.get("epoch"))
        if e is not None:
            self.epoch = e
        self.status, self.pause_reason, self.end = "running", None, None
        self.resumes += 1
        self._mark = (self.elapsed_s, k)

    def _roll_back(self, k: int) -> None:
        """Forget what the log recorded at steps after k: fold again the events kept up to k."""
        if self.step > k:
            self.superseded.append((k + 1, self.step))
        kept = [e for e in self._kept if not superseded_by(e, k)]
        if len(kept) == len(self._kept) and self.step <= k:
            return
        keep = {f: getattr(self, f) for f in _LOG_FACTS}
        fresh = RunState(**{f: getattr(self, f) for f in _HEADER_FACTS})
        self.__dict__.update(fresh.__dict__)
        self.__dict__.update(keep)
        self._replaying = True
        try:
            for e in kept:
                self.apply(e)
        finally:
            self._replaying = False
        self._kept, self.epoch = kept, self.epochs_completed


_HEADER_FACTS = ("preset", "device", "run_id", "epochs", "steps_per_epoch", "total_steps", "watched", "min_delta")
# what a rollback leaves alone: the latest step's own values (the next step replaces them) and facts about the log
_LOG_FACTS = ("knobs", "samples_per_s", "elapsed_s", "eta_s", "superseded", "resume_points", "partial", "_stepped")
