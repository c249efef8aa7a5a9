"""Comparing two runs' event logs step by step: what `schedtui diff` reports.

`compare(a, b)` streams both logs (`iter_events`; a damaged line is skipped and
named in the run's `warnings`) and merges their step
events by step number, so two million-step logs are compared in one linear pass
without holding either in memory. Two runs match when every step is in both, with
loss, loss terms and every knob value identical bit for bit (reruns are meant to
be), and their final metrics (status, steps, last evaluation, best accuracy) are
identical. Elapsed time, run ids, edit counts and config differences are context,
not part of the verdict. Floats are compared exactly (-0.0 is not 0.0, NaN is NaN)
and shown with `repr`, so a difference in the last digit is visible.

Pure Python, stdlib only; imports nothing from schedtui except `schedtui.events`,
and must not import torch, textual or rich.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from schedtui.events.reader import Log, iter_events, resolve_log_path

MAX_CONFIG_DIFFS = 200  # more than anyone reads; keeps a pathological pair of configs cheap


@dataclass
class RunSummary:
    """One run, as far as the comparison needs it (filled while its log streams by)."""

    path: Path
    header: dict
    warnings: list[str] = field(default_factory=list)
    steps: int = 0  # step events seen
    last_step: int | None = None
    status: str | None = None  # from the end event; None when the log has none
    epochs_completed: int | None = None
    val_loss: float | None = None  # the last validation eval
    val_acc: float | None = None
    best_val_acc: float | None = None  # the end event's, or the best eval seen when there is none
    edits: int = 0
    elapsed_s: float | None = None

    @property
    def run_id(self) -> str:
        return str(self.header.get("run_id", "?"))

    @property
    def knob_names(self) -> list[str]:
        knobs = self.header.get("knobs")
        return list(knobs) if isinstance(knobs, dict) else []


# (label, attribute, counts towards the verdict)
FINALS = (
    ("run id", "run_id", False),
    ("status", "status", True),
    ("steps", "last_step", True),
    ("epochs completed", "epochs_completed", True),
    ("final val loss", "val_loss", True),
    ("final val acc", "val_acc", True),
    ("best val acc", "best_val_acc", True),
    ("edits", "edits", False),
    ("elapsed s", "elapsed_s", False),
)


@dataclass
class Comparison:
    a: RunSummary
    b: RunSummary
    first_step: int | None = None  # the first step where the runs differ; None if no step does
    at_first: list[tuple[str, object, object]] = field(default_factory=list)  # (what, A, B) at first_step
    first_missing: str | None = None  # "A" or "B" when first_step is a step that run lacks
    common_steps: int = 0  # steps both runs logged
    finals: list[tuple[str, object, object, bool]] = field(default_factory=list)  # (label, A, B, differs)
    finals_differ: list[str] = field(default_factory=list)  # labels of differing finals that count
    knobs_only_a: list[str] = field(default_factory=list)
    knobs_only_b: list[str] = field(default_factory=list)
    config: list[tuple[str, object, object]] = field(default_factory=list)  # (dotted key, A, B)

    @property
    def match(self) -> bool:
        return self.first_step is None and not self.finals_differ


def same(x, y) -> bool:
    """Bit-for-bit equality of two logged values (NaN equals NaN, -0.0 is not 0.0)."""
    if isinstance(x, float) or isinstance(y, float):
        if not (isinstance(x, (int, float)) and isinstance(y, (int, float))) or isinstance(x, bool) or isinstance(y, bool):
            return False
        if x != y:
            return math.isnan(x) and math.isnan(y)
        return x != 0 or math.copysign(1.0, x) == math.copysign(1.0, y)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same(v, y[k]) for k, v in x.items())
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y))
    return type(x) is type(y) and x == y


def as_dict(v) -> dict:
    """A field that should hold a table; anything else in a damaged log counts as empty."""
    return v if isinstance(v, dict) else {}


def show(v) -> str:
    """A logged value for display: floats in full (repr), None as a dash."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(", ", ": "))


def _open(src) -> tuple[RunSummary, Iterator[dict]]:
    """The run's summary (header read now: a bad log fails here) and its step events, streamed."""
    if isinstance(src, Log):
        run = RunSummary(path=src.path, header=src.header, warnings=list(src.warnings))
        events: Iterator[dict] = iter(src.events)
    else:
        path, warnings = resolve_log_path(src), []
        events = iter_events(path, strict=False, warnings=warnings)
        header = next(events)
        run = RunSummary(path=path, header=header, warnings=warnings)
    return run, _steps(run, events)


def _steps(run: RunSummary, events: Iterator[dict]) -> Iterator[dict]:
    best, unnumbered = None, 0
    for ev in events:
        t = ev["type"]
        if t == "step":
            if not isinstance(ev.get("step"), int) or isinstance(ev.get("step"), bool):
                unnumbered += 1
                continue
            run.steps += 1
            run.last_step = ev["step"]
            yield ev
        elif t == "eval" and ev.get("split", "val") == "val":
            run.val_loss, run.val_acc = ev.get("loss"), ev.get("acc")
            acc = ev.get("acc")
            if isinstance(acc, (int, float)) and not math.isnan(acc) and (best is None or acc > best):
                best = acc
        elif t == "edit":
            run.edits += 1
        elif t == "end":
            run.status, run.epochs_completed = ev.get("status"), ev.get("epochs_completed")
            run.elapsed_s, run.best_val_acc = ev.get("elapsed_s"), ev.get("best_val_acc")
    if unnumbered:
        run.warnings.append(f"{unnumbered} step event{'s' if unnumbered != 1 else ''} without a step number, ignored")
    if run.status is None:  # no end event: the run was still going, or was killed
        run.best_val_acc = best


def step_diffs(ea: dict, eb: dict) -> list[tuple[str, object, object]]:
    """(what, A, B) for the loss, each knob and each loss term that differ between two step events."""
    out = []
    if not same(ea.get("loss"), eb.get("loss")):
        out.append(("loss", ea.get("loss"), eb.get("loss")))
    for prefix, key in (("", "knobs"), ("term:", "terms")):
        da, db = as_dict(ea.get(key)), as_dict(eb.get(key))
        for k in list(da) + [k for k in db if k not in da]:
            if not same(da.get(k), db.get(k)):
                out.append((prefix + k, da.get(k), db.get(k)))
    return out


def flatten(d: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and scalars are leaves."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diffs(ha: dict, hb: dict) -> list[tuple[str, object, object]]:
    """Dotted keys whose values differ between two headers: the run context, then the config."""

    def context(h: dict) -> dict:
        ctx = {"header.device": h.get("device"), "header.steps_per_epoch": h.get("steps_per_epoch")}
        ctx.update(flatten(as_dict(h.get("versions")), "versions."))
        cfg = h.get("config")
        ctx.update(flatten(cfg) if isinstance(cfg, dict) else {"config": cfg})
        return ctx

    fa, fb = context(ha), context(hb)
    out = []
    for k in list(fa) + [k for k in fb if k not in fa]:
        if not same(fa.get(k), fb.get(k)):
            out.append((k, fa.get(k), fb.get(k)))
            if len(out) >= MAX_CONFIG_DIFFS:
                break
    return out


def compare(a, b) -> Comparison:
    """Compare two logs (paths, run directories or `Log`s); raises LogError for a bad log."""
    run_a, steps_a = _open(a)
    run_b, steps_b = _open(b)
    c = Comparison(a=run_a, b=run_b)
    ea, eb = next(steps_a, None), next(steps_b, None)
    while ea is not None or eb is not None:
        if eb is None or (ea is not None and ea["step"] < eb["step"]):
            if c.first_step is None:
                c.first_step, c.first_missing = ea["step"], "B"
                c.at_first = [("step", "logged", "not logged")]
            ea = next(steps_a, None)
        elif ea is None or eb["step"] < ea["step"]:
            if c.first_step is None:
                c.first_step, c.first_missing = eb["step"], "A"
                c.at_first = [("step", "not logged", "logged")]
            eb = next(steps_b, None)
        else:
            c.common_steps += 1
            if c.first_step is None:
                diffs = step_diffs(ea, eb)
                if diffs:
                    c.first_step, c.at_first = ea["step"], diffs
            ea, eb = next(steps_a, None), next(steps_b, None)
    for label, attr, counts in FINALS:
        va, vb = getattr(run_a, attr), getattr(run_b, attr)
        differs = not same(va, vb)
        c.finals.append((label, va, vb, differs))
        if differs and counts:
            c.finals_differ.append(label)
    ka, kb = run_a.knob_names, run_b.knob_names
    c.knobs_only_a = [k for k in ka if k not in kb]
    c.knobs_only_b = [k for k in kb if k not in ka]
    c.config = config_diffs(run_a.header, run_b.header)
    return c
