"""A run's event log turned into other files: a per-step CSV, or a preset with its edits folded in.

- `write_csv(log, file)`: a header row, then one row per step event (type, step,
  epoch, time, loss, then every knob's value and every loss term) and one per
  eval event (acc, split, model; knob columns empty), in log order. Streams: a
  path is read twice (once for the columns and the fold, once for the rows),
  never held whole. The rows are the run's: a copy of a step or an evaluation
  that a later resume superseded is left out (the later copy is the run's), as
  the fold leaves it out.
- `exported_preset(log, source_path)`: the header's config with `edits` replaced
  by every edit the run applied (`logged_edits`: what a run of the preset applies
  at the same steps), name and description saying where it came from, as TOML
  behind a `#` comment block. The text reads back with tomllib as exactly
  `preset_config(...)` (checked here, tested).

What the run is (its edits, where SWA started, how it ended) is the one fold's,
`Scan.state` (`events.state.RunState`). `log` is a `Log` or a log path / run
directory (a damaged line is skipped and named in `Scan.warnings`; a file that is not a log is a one-line LogError). Pure Python, stdlib only; imports nothing from schedtui
but `schedtui.errors`, `schedtui.events` and `schedtui.config` (dump, edits), and must not
import torch, textual or rich.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from schedtui.config.dump import dumps
from schedtui.config.edits import logged_edits
from schedtui.errors import UserError
from schedtui.events.compare import as_dict, same
from schedtui.events.reader import Log, iter_events, resolve_log_path
from schedtui.events.state import RunState, supersedes
from schedtui.events.supersede import Superseded

BASE_COLUMNS = ("type", "step", "epoch", "time", "loss", "acc", "split", "model")
_EXPORTED = re.compile(r"^exported from run \S+ with \d+ edits? folded in(; was: )?")


@dataclass
class Scan:
    """What one pass over a log finds: the CSV columns, and the run as the one fold (`state`) says it is."""

    path: Path
    header: dict
    state: RunState
    knobs: list[str] = field(default_factory=list)  # header order, then any seen only in steps
    terms: list[str] = field(default_factory=list)
    steps: int = 0  # rows written by the last `csv_rows` that ran to its end
    evals: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def edit_events(self) -> list[dict]:
        return self.state.edit_events


def _events(log, warnings: list[str] | None = None) -> tuple[Path, Iterator[dict]]:
    """(path, iterator over the header and then every event)."""
    if isinstance(log, Log):
        return log.path, iter([log.header, *log.events])
    path = resolve_log_path(log)
    return path, iter_events(path, strict=False, warnings=warnings)


def scan(log) -> Scan:
    """One streaming pass; raises LogError for a bad log (before anything is written)."""
    warnings: list[str] = []
    path, events = _events(log, warnings)
    header = next(events)
    s = Scan(path=path, header=header, state=RunState.from_header(header), warnings=warnings)
    knobs = s.header.get("knobs")
    seen_knobs = dict.fromkeys(knobs if isinstance(knobs, dict) else ())
    seen_terms: dict = {}
    fold = s.state.apply
    for ev in events:
        fold(ev)
        if ev["type"] == "step":
            for k in as_dict(ev.get("knobs")):
                if k not in seen_knobs:
                    seen_knobs[k] = None
            for k in as_dict(ev.get("terms")):
                if k not in seen_terms:
                    seen_terms[k] = None
    if isinstance(log, Log):
        s.warnings.extend(log.warnings)
    s.knobs, s.terms = list(seen_knobs), list(seen_terms)
    return s


def csv_columns(s: Scan) -> list[str]:
    return [*BASE_COLUMNS, *s.knobs, *(f"term:{t}" for t in s.terms)]


def csv_rows(log, s: Scan | None = None) -> Iterator[list]:
    """The header row, then one row per step and eval event of the run, lazily: a copy a later resume superseded
    is left out (the later copy is the run's), and so is a step without a number or a step again (the first
    counts), as the fold leaves them out."""
    s = s or scan(log)
    yield csv_columns(s)
    _, events = _events(log if isinstance(log, Log) else s.path)
    next(events)
    knobs, terms, empty = s.knobs, s.terms, [None] * (len(s.knobs) + len(s.terms))
    superseded = Superseded(s.state.resume_points)
    epoch, last, s.steps, s.evals = None, None, 0, 0
    for ev in events:
        t = ev["type"]
        if superseded(ev):
            continue
        if t == "step":
            step = ev.get("step")
            if not isinstance(step, int) or isinstance(step, bool) or (last is not None and step <= last):
                continue
            last, epoch = step, ev.get("epoch", epoch)
            kv, tv = as_dict(ev.get("knobs")), as_dict(ev.get("terms"))
            s.steps += 1
            yield ["step", step, epoch, ev.get("time"), ev.get("loss"), None, None, None,
                   *(kv.get(k) for k in knobs), *(tv.get(k) for k in terms)]
        elif t == "eval":
            s.evals += 1
            yield ["eval", ev.get("step"), epoch, ev.get("time"), ev.get("loss"), ev.get("acc"),
                   ev.get("split"), ev.get("model"), *empty]
        elif supersedes(ev) is not None:
            last = supersedes(ev)  # the run goes on from the checkpoint's step


def write_csv(log, file, s: Scan | None = None, text=None) -> int:
    """Write the CSV to an open text file (opened with newline=""); returns the data rows written.
    `text`, when given, is applied to every string cell (the command makes control characters visible
    when the CSV goes to a terminal)."""
    w = csv.writer(file, lineterminator="\n")
    n = -1
    for n, row in enumerate(csv_rows(log, s)):
        w.writerow(row if text is None else [text(v) if isinstance(v, str) else v for v in row])
    return n


def _drop_none(v):
    """TOML has no null: a key whose value is None is left out."""
    if isinstance(v, dict):
        return {k: _drop_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_none(x) for x in v if x is not None]
    return v


def preset_config(header: dict, edit_events: list[dict], swa_starts: list[int] = ()) -> dict:
    """The config a preset file should hold: the run's, with every applied edit as a planned one, and an
    SWA started on demand as `[swa] start` (the epoch it started in, or a fraction of the run before epoch 1)."""
    cfg = header.get("config")
    if not isinstance(cfg, dict):
        raise UserError("the log's header has no config; cannot export a preset from it")
    edits = []
    for ev in edit_events:
        try:
            edits.extend(logged_edits([ev]))
        except KeyError as e:
            raise UserError(f"the edit event at seq {ev.get('seq')} lacks its {e.args[0]!r} field; "
                            "cannot export the run's edits") from None
        except TypeError:  # an op that is a list, say: a damaged line that still parsed
            raise UserError(f"the edit event at seq {ev.get('seq')} is damaged; cannot export the run's edits") from None
    run_id = _run_id(header)
    cfg = _drop_none(cfg)
    base = re.sub(r"-from-[0-9a-f]{8,32}$", "", str(cfg.get("name") or header.get("preset") or "run"))
    was = _EXPORTED.sub("", str(cfg.get("description", "")))
    n = len(edits)
    desc = f"exported from run {run_id} with {n} edit{'s' if n != 1 else ''} folded in"
    out = {**cfg, "name": f"{base}-from-{run_id}", "description": desc + (f"; was: {was}" if was else ""),
           "edits": _drop_none(edits)}
    spe, epochs, swa = header.get("steps_per_epoch"), cfg.get("epochs"), as_dict(cfg.get("swa"))
    if (swa_starts and swa.get("start") is None and isinstance(spe, int) and spe > 0 and isinstance(epochs, int)
            and epochs > 0):
        k = swa_starts[0]
        out["swa"] = {**swa, "start": k / spe if k >= spe else k / (spe * epochs)}
    return out


def _run_id(header: dict) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "", str(header.get("run_id", ""))) or "unknown"


def _comment(text: str) -> str:
    return "# " + "".join(ch if ch.isprintable() else "?" for ch in text)


def exported_preset(log, source_path=None, s: Scan | None = None) -> str:
    """The preset file's text: a comment block saying where it came from, then the config as TOML."""
    s = s or scan(log)
    try:
        cfg = preset_config(s.header, s.state.edit_events, s.state.swa_starts)
    except UserError as e:
        raise UserError(f"{s.path}: {e}") from None
    n = len(cfg["edits"])
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        "schedtui preset exported from a run (schedtui export --preset)",
        f"source log: {Path(source_path or s.path).resolve()}",
        (f"run {_run_id(s.header)} (preset {s.header.get('preset', '?')}), "
         f"started {s.header.get('wall', '?')}; exported {today}"),
        (f"{n} edit{'s' if n != 1 else ''} folded in as [[edits]]: a run of this preset applies "
         f"{'them' if n != 1 else 'it'} at the same steps"),
    ]
    st, total = s.state, cfg.get("epochs")
    if st.end is None:
        lines.append(f"the log has no end event (still running, or killed); last logged step {st.step}")
    elif st.status != "completed":
        why = f", {st.end['reason']}" if st.end.get("reason") else ""
        lines.append(f"the run ended early: {st.status} at step {st.step} "
                     f"({st.epochs_completed} of {total} epochs completed{why})")
    try:
        body = dumps(cfg)
    except TypeError as e:
        raise UserError(f"{s.path}: the run's config cannot be written as TOML ({e})") from None
    try:
        back = tomllib.loads(body)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{s.path}: the run's config does not make valid TOML ({e}); not exporting it") from None
    if not same(back, cfg):
        raise UserError(f"{s.path}: the run's config does not survive a round trip through TOML; not exporting it")
    return "\n".join(_comment(line) for line in lines) + "\n\n" + body
