"""Which logged events a later resume superseded, for readers that stream a log once and cannot roll back.

The rule is the fold's (`state.supersedes`): a `resume` from a checkpoint at step k
supersedes every event logged before it at a step after k; the later copy wins.
`RunState` applies it by rolling back; a reader that hands events on as they come
(diff's step-by-step merge, the CSV rows) needs to know the resumes first:

- `Superseded(points)` answers `superseded(ev)` for events in file order, given the
  (seq, k) of every resume from a checkpoint (`RunState.resume_points` after a
  pass, or `find_resumes`). A log without such resumes costs one comparison an event.
- `steps_between(path, offset, lo, hi)` reads back the step events lo..hi that
  follow `offset` (the timeline counts a bucket again after a rollback).
- `find_resumes(path)` finds them without parsing the log: a byte search for the
  lines that hold `"resume"` (a tenth of a second for a million steps), each parsed
  as the reader parses it.

Pure Python, stdlib only; imports nothing from schedtui but `schedtui.events`; no
torch, textual or rich.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator

from schedtui.events.format import VERSION, LogError, upgrade
from schedtui.events.reader import check_header, parse_line, resolve_log_path
from schedtui.events.state import supersedes

CHUNK = 1 << 22


class Superseded:
    def __init__(self, points):
        pts = sorted(points)
        self._seqs = [seq for seq, _ in pts]
        self._floor = [k for _, k in pts]  # the lowest k of this resume and every later one
        for i in range(len(self._floor) - 2, -1, -1):
            self._floor[i] = min(self._floor[i], self._floor[i + 1])

    def __bool__(self) -> bool:
        return bool(self._seqs)

    def __call__(self, ev: dict) -> bool:
        """Whether `ev` is superseded by a resume logged after it."""
        if not self._seqs:
            return False
        seq, step = ev.get("seq"), ev.get("step")
        if not isinstance(seq, int) or not isinstance(step, int) or isinstance(step, bool):
            return False
        i = bisect_right(self._seqs, seq)
        return i < len(self._seqs) and step > self._floor[i]


def find_resumes(path) -> list[tuple[int, int]]:
    """(seq, k) of every resume from a checkpoint in the log at `path`, in file order."""
    p = resolve_log_path(path)
    out = []
    try:
        with open(p, "rb") as f:
            _, version = check_header(p, f.readline())
            tail = b""
            while True:
                data = f.read(CHUNK)
                if not data:
                    break
                data = tail + data
                cut = data.rfind(b"\n") + 1
                out += _resumes(data[:cut], version)
                tail = data[cut:]
            out += _resumes(tail, version)  # a last line without its newline
    except OSError as e:
        raise LogError(f"{p}: cannot read it ({e.strerror or e})") from None
    return out


def _resumes(block: bytes, version: int) -> list[tuple[int, int]]:
    out, pos = [], block.find(b'"resume"')  # a plain search (memchr speed); the line is then parsed
    while pos >= 0:
        start = block.rfind(b"\n", 0, pos) + 1
        stop = block.find(b"\n", pos)
        stop = len(block) if stop < 0 else stop
        pos = block.find(b'"resume"', stop)
        ev, _ = parse_line(block[start:stop])
        if ev is None:
            continue
        if version < VERSION:
            ev = upgrade(ev, version)
        k, seq = supersedes(ev), ev.get("seq")
        if k is not None and isinstance(seq, int) and not isinstance(seq, bool):
            out.append((seq, k))
    return out


def steps_between(path, offset: int, lo: int, hi: int, version: int = VERSION) -> Iterator[dict]:
    """The step events lo..hi in the file at `path` from byte `offset` on, in order, up to the first step after hi
    (a superseded copy follows the last step a resume keeps)."""
    if lo > hi:
        return
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for raw in f:
                ev, _ = parse_line(raw)
                if ev is None or ev.get("type") != "step" or type(ev.get("step")) is not int:
                    continue
                if ev["step"] > hi:
                    return
                if ev["step"] >= lo:
                    yield ev if version == VERSION else upgrade(ev, version)
    except OSError as e:
        raise LogError(f"{path}: cannot read it ({e.strerror or e})") from None
