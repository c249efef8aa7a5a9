"""Comparing two runs' event logs step by step: what `schedtui diff` reports.

`compare(a, b)` streams both logs (`iter_events`; a damaged line is skipped and
named in the run's `warnings`) and merges their step events by step number, so two
million-step logs are compared in one linear pass without holding either in
memory. Every event also goes through the one fold (`RunState`), which is where
the final metrics come from (`RunState.finals`: status, steps, epochs completed,
the validation of the model each run ended with, the best validation and its
step, each averaged model's own last validation), so diff says what the headless
and replay summaries say about the same log.

Steps a later resume superseded are not the run's: the resumes are found first
(`supersede.find_resumes`, a byte search) and the superseded copies are left out
of the merge; the later copy is compared. A step logged again without a resume
counts once (the first copy), as in the fold and the timeline.

Two runs match when every step is in both, with loss, loss terms and every knob
value identical bit for bit (reruns are meant to be), and their final metrics are
identical. Elapsed time, run ids, edit and warning counts and config differences
are context, not part of the verdict. Floats are compared exactly (-0.0 is not
0.0, NaN is NaN) and shown with `repr`, so a difference in the last digit is
visible.

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
from schedtui.events.state import RunState, supersedes
from schedtui.events.supersede import Superseded, find_resumes

MAX_CONFIG_DIFFS = 200  # more than anyone reads; keeps a pathological pair of configs cheap


@dataclass
class RunSummary:
    """One run: its header, what the one fold says it is (`state`), and the step events compared."""

    path: Path
    header: dict
    state: RunState
    warnings: list[str] = field(default_factory=list)
    steps: int = 0  # step events compared (superseded copies and repeats left out)

    @property
    def run_id(self) -> str:
        return str(self.header.get("run_id", "?"))

    @property
    def knob_names(self) -> list[str]:
        knobs = self.header.get("knobs")
        return list(knobs) if isinstance(knobs, dict) else []


# finals that are context, not part of the verdict (the rest of `RunState.finals` count)
CONTEXT = frozenset({"run id", "edits", "warnings", "elapsed s"})


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
    """The run's summary (header read now: a bad log fails here) and its step events, streamed; the fold takes
    every event as it goes by."""
    if isinstance(src, Log):
        path, header, warnings, events = src.path, src.header, list(src.warnings), iter(src.events)
        superseded = Superseded(p for p in _resume_points(src.events))
    else:
        path, warnings = resolve_log_path(src), []
        events = iter_events(path, strict=False, warnings=warnings)
        header = next(events)
        superseded = Superseded(find_resumes(path))  # known first: the stream hands steps on as it reads them
    run = RunSummary(path=path, header=header, state=RunState.from_header(header), warnings=warnings)
    return run, _steps(run, events, superseded)


def _resume_points(events: list[dict]) -> Iterator[tuple[int, int]]:
    for ev in events:
        k = supersedes(ev)
        if k is not None and isinstance(ev.get("seq"), int) and not isinstance(ev.get("seq"), bool):
            yield ev["seq"], k


def _steps(run: RunSummary, events: Iterator[dict], superseded: Superseded) -> Iterator[dict]:
    """The run's step events in order: a copy that a later resume superseded, a step without a number and a
    step again (the first copy counts) are left out, as the fold leaves them out."""
    fold, unnumbered, again = run.state.apply, 0, 0
    dropped = superseded if superseded else None  # most logs have no resume: no call a step
    for ev in events:
        taken = fold(ev)
        if ev["type"] != "step":
            continue
        if not taken:
            if type(ev.get("step")) is int:
                again += 1
            else:
                unnumbered += 1
        elif dropped is None or not dropped(ev):
            run.steps += 1
            yield ev
    if unnumbered:
        run.warnings.append(f"{unnumbered} step event{'s' if unnumbered != 1 else ''} without a step number, ignored")
    if again:
        run.warnings.append(f"{again} step event{'s' if again != 1 else ''} repeating an earlier step, ignored "
                            "(the first counts)")


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
    fa, fb = dict(run_a.state.finals()), dict(run_b.state.finals())
    labels = ["run id", *fa, *(k for k in fb if k not in fa)]
    fa["run id"], fb["run id"] = run_a.run_id, run_b.run_id
    for label in labels:
        va, vb = fa.get(label), fb.get(label)
        differs = not same(va, vb)
        c.finals.append((label, va, vb, differs))
        if differs and label not in CONTEXT:
            c.finals_differ.append(label)
    ka, kb = run_a.knob_names, run_b.knob_names
    c.knobs_only_a = [k for k in ka if k not in kb]
    c.knobs_only_b = [k for k in kb if k not in ka]
    c.config = config_diffs(run_a.header, run_b.header)
    return c
