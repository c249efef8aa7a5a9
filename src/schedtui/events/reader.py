"""Reading an event log back: `read_log(path) -> Log`, tolerant where a crash could
have left its mark, strict where the file is something else.

Contract:
- `resolve_log_path` takes the log file or a run directory holding `events.jsonl`.
- The first line must be a header of format `FORMAT` with a version this code
  reads; an older version is upgraded through `format.UPGRADES` line by line.
  Anything else is refused with a one-line `LogError`.
- Non-finite floats come back as floats (`format.decode_nonfinite`); a line nested
  deeper than `format.MAX_DEPTH` is not an event.
- A torn last line (no trailing newline, not valid JSON) is dropped with a warning.
- A malformed line elsewhere is a `LogError` naming the line (strict, the default),
  or is skipped with a warning (`strict=False`).
- Gaps and reversals in `seq` are reported in `Log.warnings`; reading goes on.
- Every `LogError` message is one line and starts with the file path.

Pure Python, stdlib only; imports nothing from schedtui except `schedtui.errors`
and `schedtui.events.format`, and no torch, textual or rich.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from schedtui.events.format import (
    EVENT_TYPES, FORMAT, MAX_DEPTH, NONFINITE, UPGRADES, VERSION, LogError, decode_nonfinite, upgrade,
)

MAX_WARNINGS = 100  # past this, one summary line instead of thousands


@dataclass
class Log:
    path: Path
    header: dict
    events: list[dict] = field(default_factory=list)  # every event after the header, in file order
    warnings: list[str] = field(default_factory=list)  # human-readable, one line each


def resolve_log_path(path) -> Path:
    """The log file itself, or `events.jsonl` inside a run directory."""
    p = Path(path).expanduser()
    if p.is_dir():
        f = p / "events.jsonl"
        if not f.is_file():
            raise LogError(f"{p}: not an event log; a run directory holds events.jsonl and this one has none")
        return f
    if not p.exists():
        raise LogError(f"{p}: no such file")
    return p


def parse_line(raw: bytes) -> tuple[dict | None, str]:
    """One line of a log as (event, "") or (None, why it is not one); never raises."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    if "\x00" in text:
        return None, "binary data"
    try:
        ev = json.loads(text)
    except ValueError:
        return None, "not JSON" if text.strip() else "empty line"
    except RecursionError:
        return None, "nested too deeply"
    if not isinstance(ev, dict):
        return None, "not a JSON object"
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(ev) > MAX_DEPTH:
        return None, "nested too deeply"
    if NONFINITE in ev:
        decode_nonfinite(ev)
    return ev, ""


def _depth(obj) -> int:
    """How deeply `obj` nests lists and dicts (without recursion: it may be deep)."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        o, d = todo.pop()
        if d > deepest:
            deepest = d
            if d > MAX_DEPTH:
                break
        for v in (o.values() if isinstance(o, dict) else o):
            if isinstance(v, (dict, list)):
                todo.append((v, d + 1))
    return deepest


def check_header(p: Path, raw: bytes) -> tuple[dict, int]:
    """(header, its version) from a log's first line; a one-line LogError for anything that is not a header
    this code reads."""
    if not raw.strip():
        raise LogError(f"{p} is empty, not a schedtui event log")
    head, why = parse_line(raw)
    if head is None:
        raise LogError(f"{p} is not a schedtui event log (first line: {why})")
    fmt = head.get("format")
    if fmt != FORMAT:
        found = "no format field" if fmt is None else f"format {fmt!r}"
        raise LogError(f"{p} is not a schedtui event log ({found}, expected {FORMAT!r})")
    version = head.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LogError(f"{p} has an unknown log version {version!r}")
    if version > VERSION:
        raise LogError(f"{p} was written by a newer schedtui (log version {version}, this reads up to {VERSION})")
    missing = [v for v in range(version, VERSION) if v not in UPGRADES]
    if missing:
        raise LogError(f"{p} has log version {version}, which this schedtui can no longer upgrade")
    return head, version


def iter_events(path, strict: bool = True, warnings: list[str] | None = None) -> Iterator[dict]:
    """Yield the header, then every event, upgraded to `VERSION`; see the module docstring.

    Warnings go to `warnings` when given (a list the caller owns)."""
    p = resolve_log_path(path)
    out: list[str] = [] if warnings is None else warnings
    dropped = 0

    def warn(msg: str) -> None:
        nonlocal dropped
        if len(out) < MAX_WARNINGS:
            out.append(msg)
        else:
            dropped += 1

    try:
        f = open(p, "rb")
    except OSError as e:
        raise LogError(f"{p}: cannot read it ({e.strerror or e})") from None
    with f:
        try:
            first = f.readline()
            head, version = check_header(p, first)
            yield upgrade(head, version) if version < VERSION else head
            last = head.get("seq", 0) if isinstance(head.get("seq"), int) else 0
            unknown: set = set()
            lineno = 1
            for raw in f:
                lineno += 1
                ev, why = parse_line(raw)
                if ev is None and not raw.endswith(b"\n"):
                    warn(f"line {lineno}: torn last line dropped (the run was still writing, or crashed)")
                    break
                if ev is not None and version < VERSION:
                    ev = upgrade(ev, version)
                if ev is not None:
                    seq = ev.get("seq")
                    if not isinstance(seq, int) or isinstance(seq, bool):
                        ev, why = None, "no integer seq"
                    elif not isinstance(ev.get("type"), str):
                        ev, why = None, "no type"
                if ev is None:
                    if strict:
                        raise LogError(f"{p}: line {lineno} is not a valid event ({why})")
                    warn(f"line {lineno}: skipped, not a valid event ({why})")
                    continue
                if seq > last + 1:
                    n = seq - last - 1
                    warn(f"seq jumps from {last} to {seq} at line {lineno}: {n} event{'s' if n != 1 else ''} missing")
                elif seq <= last:
                    warn(f"seq goes from {last} to {seq} at line {lineno}: not increasing")
                last = seq
                if ev["type"] not in EVENT_TYPES and ev["type"] not in unknown:
                    unknown.add(ev["type"])
                    warn(f"line {lineno}: unknown event type {ev['type']!r} (kept)")
                yield ev
        except OSError as e:
            raise LogError(f"{p}: cannot read it ({e.strerror or e})") from None
        finally:
            if dropped:
                out.append(f"... and {dropped} more warnings")


def read_log(path, strict: bool = True) -> Log:
    """Read a whole event log; see the module docstring for what is tolerated."""
    p = resolve_log_path(path)
    warnings: list[str] = []
    it = iter_events(p, strict=strict, warnings=warnings)
    header = next(it)
    events = list(it)
    return Log(path=p, header=header, events=events, warnings=warnings)
