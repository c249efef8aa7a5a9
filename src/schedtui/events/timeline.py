"""A recorded run indexed for review: per-step data downsampled, everything else kept, any step on demand.

`Timeline(path)` checks the header at once (a file that is not a log is a one-line
`LogError`); `load()` reads what has been written so far and can be called again
to pick up what a live run appended since (`replay --follow`). Memory is bounded
by `capacity`: step events are folded into at most that many buckets (the mean
loss, the first step's knob values and time); when the run outgrows them, buckets
merge in pairs. Non-step events (edits, evaluations, epochs, pauses, ...) are all
kept: a run has few. `step_event(k)` reads step k's own line back from the file
(a sparse index of chunk offsets, so a lookup reads at most a chunk). What the run
is (status, steps, evaluations, the best, edits, how it ended) is `state`, the one
fold (`events.state.RunState`) every view shares, fed as the file is read.

A resume from a checkpoint at step k supersedes what the log recorded at later
steps before it (the fold's rule; the later copy wins): those events leave
`events`, the buckets after step k are emptied (the one holding k is counted again
from the file), and the index drops them, so `step_event(j)` finds the copy that
came after the resume. A step logged twice without such a resume keeps the first.

Threads: `load` may run on a worker thread while another reads; it holds `lock`
while it changes anything, and a reader that needs a consistent picture (several
questions in a row) holds it too.

Speed: the logs this project writes are compact JSON with a fixed key order
(`{"seq":N,"type":"step","step":K,...,"loss":L,"knobs":{...}`), so a chunk whose
lines all look as expected is taken in bulk with a few regular-expression scans
(about 1 s for a million steps on a slow core); any chunk that does not (a
garbage line, a `seq` gap, another writer's formatting, an older version) is read
line by line, with a warning for each line it skips. Version 1 logs (bare NaN)
and version 2 (non-finite numbers as strings, listed in `$nonfinite`) share the
step-line layout, so both take the bulk path. Whatever a damaged log holds (a
config that is not a table, a step whose knobs are not, a time that is not a
number), loading it raises nothing but `LogError`. Pure Python, stdlib only; no
torch, textual or rich.
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_right

from schedtui.events.format import NONFINITE_TEXT, STEP_LINES_SINCE, VERSION, LogError, upgrade
from schedtui.events.reader import MAX_WARNINGS, check_header, parse_line, resolve_log_path
from schedtui.events.state import RunState, superseded_by, supersedes
from schedtui.events.supersede import steps_between

CHUNK = 1 << 20
# a step line, to its end: a line cut short in the middle of a log (two closing braces gone) is left to the careful path
_LOSS = re.compile(rb'"type":"step","step":\d+,"time":[^,]*,"epoch":\d+,"loss":([^,]*),"knobs":\{.*\}.*\}\n')
_OTHER = re.compile(rb'"type":"(?!step")')
_SEQ = re.compile(rb'\{"seq":(\d+),')
_TIME = re.compile(rb'"time":([^,]*),')
_STEP_AT = b'"type":"step","step":%d,'
_QUOTED_NONFINITE = frozenset(b'"%s"' % k.encode() for k in NONFINITE_TEXT)  # a v2 loss that was not finite


class _Damaged(Exception):
    """A line the bulk path relies on is not an event: the chunk is read carefully instead."""


def _int(v) -> int | None:
    """A non-negative int from a header field, or None (a damaged header: "many" epochs, a list, 10**400)."""
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53 else None


def _num(v) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _knobs(ev: dict) -> dict:
    """A step's knob values as a table (a damaged line's may be anything else: then none)."""
    k = ev.get("knobs")
    return k if isinstance(k, dict) else {}


class Timeline:
    def __init__(self, path, capacity: int = 2048):
        self.path = resolve_log_path(path)
        self.capacity = max(8, capacity - capacity % 2)
        try:
            with open(self.path, "rb") as f:
                first = f.readline()
        except OSError as e:
            raise LogError(f"{self.path}: cannot read it ({e.strerror or e})") from None
        self.header, self.version = check_header(self.path, first)
        if self.version < VERSION:
            self.header = upgrade(self.header, self.version)
        self.warnings: list[str] = []
        cfg, epochs = self.header.get("config"), None
        if not isinstance(cfg, dict):
            self.warnings.append(f"header: its config is {type(cfg).__name__}, not a table (ignored)")
        else:
            epochs = _int(cfg.get("epochs", 0))
            if epochs is None:
                self.warnings.append(f"header: epochs {cfg.get('epochs')!r} is not a whole number (ignored)")
        self.state = RunState.from_header(self.header)  # the run as far as it is loaded: the one fold
        self.total_steps = self.state.total_steps
        self.bucket = max(1, -(-(self.total_steps or 0) // self.capacity))
        self.events: list[dict] = []  # every non-step event of the run, in file order (superseded ones left out)
        self.last_step = 0
        self.last_time = 0.0
        self._sum: list[float] = []  # per bucket: sum and count of finite losses, first step's knobs and time
        self._n: list[int] = []
        self._knobs: list[dict | None] = []
        self._time: list[float | None] = []
        self._index: list[tuple[int, int]] = []  # (first step in a chunk, its file offset)
        self._reindex = False  # a resume superseded steps: the next step starts an index entry
        self._offset = self._start = len(first)  # where the next unread line starts
        self._seq = self.header.get("seq", 0) if isinstance(self.header.get("seq"), int) else 0
        self._lineno = 1
        self._dropped = 0
        self.size = self._offset
        self.lock = threading.RLock()

    # ---- reading ------------------------------------------------------------------------------
    def load(self, final: bool = True, progress=None) -> bool:
        """Read every complete line written since the last call; True when something new came.

        `final` says the writer is done: a last line without a newline is then torn and
        dropped with a warning (with `final=False` it waits for the rest)."""
        new = False
        try:
            with open(self.path, "rb") as f:
                f.seek(0, 2)
                self.size = f.tell()
                f.seek(self._offset)
                while True:
                    data = f.read(CHUNK)
                    if not data:
                        break
                    end = data.rfind(b"\n") + 1
                    if end == 0:  # no complete line in a whole chunk: a very long line, or a torn end
                        more = f.read()
                        data += more
                        end = data.rfind(b"\n") + 1
                        if end == 0:
                            if final:
                                with self.lock:
                                    self._torn(data)
                            break
                    with self.lock:
                        self._chunk(data[:end], self._offset)
                        self._offset += end
                    new = True
                    f.seek(self._offset)
                    if progress is not None:
                        progress(self._offset / max(self.size, 1))
                    if end < len(data) and len(data) < CHUNK:  # the rest is a partial last line
                        if final:
                            with self.lock:
                                self._torn(data[end:])
                        break
        except OSError as e:
            raise LogError(f"{self.path}: cannot read it ({e.strerror or e})") from None
        return new

    def _torn(self, rest: bytes) -> None:
        ev, _ = parse_line(rest)
        if ev is not None and isinstance(ev.get("seq"), int):
            self._add_lines([rest], self._offset)  # complete JSON, just no newline
            self._offset += len(rest)
        elif rest.strip():
            self._warn(f"line {self._lineno + 1}: torn last line dropped (the run was still writing, or crashed)")
            self._offset += len(rest)

    def _chunk(self, data: bytes, offset: int) -> None:
        if self.version >= STEP_LINES_SINCE and self._bulk(data, offset):
            return
        self._add_lines(data.split(b"\n")[:-1], offset)

    def _bulk(self, data: bytes, offset: int) -> bool:
        """Take a chunk of well-formed lines in bulk; False (nothing taken) when it needs a closer look."""
        n_lines = data.count(b"\n")
        losses = _LOSS.findall(data)
        others = [m.start() for m in _OTHER.finditer(data)]
        if len(losses) + len(others) != n_lines:
            return False
        m_first, m_last = _SEQ.match(data), _SEQ.match(data, data.rfind(b"\n", 0, len(data) - 1) + 1)
        if not m_first or not m_last or int(m_first[1]) != self._seq + 1 or int(m_last[1]) - self._seq != n_lines:
            return False
        others_parsed = []
        for pos in others:
            start = data.rfind(b"\n", 0, pos) + 1
            ev, _ = parse_line(data[start:data.find(b"\n", pos)])
            if ev is None or not isinstance(ev.get("step"), int) or not isinstance(ev.get("seq"), int):
                return False
            others_parsed.append((pos, ev if self.version == VERSION else upgrade(ev, self.version)))
        last_step = None  # (position, event) of the chunk's last step: the fold takes it in its place
        if losses:
            try:
                values = [float(x) for x in losses]
            except ValueError:
                try:  # a v2 non-finite loss ("NaN"): no more in the mean than a bare NaN of v1
                    values = [math.nan if x in _QUOTED_NONFINITE else float(x) for x in losses]
                except ValueError:  # null, a string, true: the careful path leaves it out of the mean
                    return False
            first = data.find(b'"type":"step","step":')
            last = data.rfind(b'"type":"step","step":')
            s0 = int(data[first + 21:data.find(b",", first + 21)])
            s1 = int(data[last + 21:data.find(b",", last + 21)])
            if s1 - s0 + 1 != len(losses) or (self.last_step and s0 != self.last_step + 1):
                return False
            ev, _ = parse_line(data[data.rfind(b"\n", 0, last) + 1:data.find(b"\n", last)])
            if ev is None:
                return False
            last_step = (last, ev if self.version == VERSION else upgrade(ev, self.version))
            saved = self._save()
            try:
                self._add_losses(s0, values, data)
            except _Damaged:
                self._restore(saved)
                return False
            self._index.append((s0, offset))
            self._reindex = False
        for pos, ev in others_parsed:
            if last_step is not None and pos > last_step[0]:
                self.state.apply(last_step[1])
                last_step = None
            self._add_other(ev)
        if last_step is not None:
            self.state.apply(last_step[1])
        self._seq += n_lines
        self._lineno += n_lines
        return True

    def _add_losses(self, s0: int, losses: list[float], data: bytes) -> None:
        s1 = s0 + len(losses) - 1
        while s1 > self.bucket * self.capacity:
            self._merge()
        b = self.bucket
        j0, j1 = (s0 - 1) // b, (s1 - 1) // b
        self._grow(j1)
        hint = 0  # the buckets' first lines come in file order: each search starts where the last one ended
        for j in range(j0, j1 + 1):
            lo, hi = max(j * b + 1, s0), min((j + 1) * b, s1)
            part = losses[lo - s0:hi - s0 + 1]
            try:
                total = math.fsum(part)
            except (ValueError, OverflowError):  # inf + -inf
                total = math.nan
            if not math.isfinite(total):
                part = [x for x in part if math.isfinite(x)]
                total = math.fsum(part)
            self._sum[j] += total
            self._n[j] += len(part)
            if self._knobs[j] is None:
                pos = data.find(_STEP_AT % lo, hint)
                if pos < 0:
                    raise _Damaged
                start = data.rfind(b"\n", 0, pos) + 1
                hint = data.find(b"\n", pos)
                ev, _ = parse_line(data[start:hint])  # a damaged line (one changed byte) sends the chunk the careful way
                if ev is None:
                    raise _Damaged
                if self.version < VERSION:
                    ev = upgrade(ev, self.version)
                self._knobs[j], self._time[j] = _knobs(ev), _num(ev.get("time"))
        self.last_step = s1
        pos = data.rfind(_STEP_AT % s1)
        m = _TIME.search(data, pos)
        try:
            self.last_time = float(m[1]) if m else self.last_time
        except ValueError:
            raise _Damaged from None

    def _save(self) -> tuple:
        return (self.bucket, self._sum[:], self._n[:], self._knobs[:], self._time[:], self.last_step, self.last_time)

    def _restore(self, saved: tuple) -> None:
        self.bucket, self._sum, self._n, self._knobs, self._time, self.last_step, self.last_time = saved

    def _add_lines(self, lines: list[bytes], offset: int) -> None:
        """The careful path: one line at a time, skipping (with a warning) what is not an event."""
        for raw in lines:
            self._lineno += 1
            line_offset = offset
            offset += len(raw) + 1
            ev, why = parse_line(raw)
            if ev is not None and self.version < VERSION:
                ev = upgrade(ev, self.version)
            if ev is not None:
                if not isinstance(ev.get("seq"), int) or isinstance(ev.get("seq"), bool):
                    ev, why = None, "no integer seq"
                elif not isinstance(ev.get("type"), str):
                    ev, why = None, "no type"
            if ev is None:
                self._warn(f"line {self._lineno}: skipped, not a valid event ({why})")
                continue
            seq = ev["seq"]
            if seq > self._seq + 1:
                n = seq - self._seq - 1
                self._warn(f"seq jumps from {self._seq} to {seq} at line {self._lineno}: {n} event{'s' if n != 1 else ''} missing")
            elif seq <= self._seq:
                self._warn(f"seq goes from {self._seq} to {seq} at line {self._lineno}: not increasing")
            self._seq = seq
            step = ev.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                self._warn(f"line {self._lineno}: skipped, no integer step")
                continue
            if ev["type"] == "step":
                self._add_step(ev, line_offset)
            else:
                self._add_other(ev)

    def _add_step(self, ev: dict, offset: int) -> None:
        s = ev["step"]
        if s <= self.last_step and self._n:
            self._warn(f"line {self._lineno}: step {s} again after step {self.last_step} (kept the first)")
            return
        self.state.apply(ev)
        if not self._index or self._reindex or s >= self._index[-1][0] + 4096:
            self._index.append((s, offset))
            self._reindex = False
        while s > self.bucket * self.capacity:
            self._merge()
        j = max(s - 1, 0) // self.bucket
        self._grow(j)
        loss = ev.get("loss")
        if isinstance(loss, (int, float)) and math.isfinite(loss):
            self._sum[j] += loss
            self._n[j] += 1
        if self._knobs[j] is None:
            self._knobs[j], self._time[j] = _knobs(ev), _num(ev.get("time"))
        t = _num(ev.get("time"))
        self.last_step, self.last_time = s, self.last_time if t is None else t

    def _add_other(self, ev: dict) -> None:
        k = supersedes(ev)
        if k is not None:
            self._roll_back(k)
        self.events.append(ev)
        self.state.apply(ev)
        t = _num(ev.get("time"))
        if t is not None and t == t:
            self.last_time = max(self.last_time, t)

    def _roll_back(self, k: int) -> None:
        """A resume from a checkpoint at step k: what was logged at later steps before it is not the run's
        (the fold's rule); the steps after it take their place."""
        self.events = [ev for ev in self.events if not superseded_by(ev, k)]
        if self.last_step <= k:
            return
        b = self.bucket
        j = k // b  # the bucket that holds step k + 1
        for buf in (self._sum, self._n, self._knobs, self._time):
            del buf[j + 1:]
        if j < len(self._sum):
            self._sum[j], self._n[j], self._knobs[j], self._time[j] = self._recount(j * b + 1, k)
        self._index = [x for x in self._index if x[0] <= k]
        self._reindex = True
        self.last_step = k

    def _recount(self, lo: int, hi: int) -> tuple[float, int, dict | None, float | None]:
        """A bucket's sum and count of finite losses, first knobs and time, over steps lo..hi (read back)."""
        total, n, knobs, time = 0.0, 0, None, None
        i = bisect_right(self._index, (lo, math.inf)) - 1
        for ev in steps_between(self.path, self._index[i][1] if i >= 0 else self._start, lo, hi, self.version):
            loss = ev.get("loss")
            if isinstance(loss, (int, float)) and math.isfinite(loss):
                total, n = total + loss, n + 1
            if knobs is None:
                knobs, time = _knobs(ev), _num(ev.get("time"))
        return total, n, knobs, time

    def _grow(self, j: int) -> None:
        while len(self._sum) <= j:
            self._sum.append(0.0)
            self._n.append(0)
            self._knobs.append(None)
            self._time.append(None)

    def _merge(self) -> None:
        """Twice the steps per bucket: neighbours merge, so memory stays within `capacity` buckets."""
        if len(self._sum) % 2:
            self._grow(len(self._sum))  # an even number of buckets
        self._sum = [a + b for a, b in zip(self._sum[::2], self._sum[1::2])]
        self._n = [a + b for a, b in zip(self._n[::2], self._n[1::2])]
        self._knobs = [a if a is not None else b for a, b in zip(self._knobs[::2], self._knobs[1::2])]
        self._time = [a if a is not None else b for a, b in zip(self._time[::2], self._time[1::2])]
        self.bucket *= 2

    def _warn(self, msg: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(msg)
        else:
            self._dropped += 1

    # ---- questions ----------------------------------------------------------------------------
    def buckets(self, upto: int) -> list[tuple[int, float | None, dict, float | None]]:
        """(first step, mean loss, knob values at that step, time) per bucket that starts at or before `upto`."""
        out = []
        b = self.bucket
        for j in range(min(len(self._sum), (max(upto, 1) - 1) // b + 1)):
            if self._knobs[j] is None:
                continue
            mean = self._sum[j] / self._n[j] if self._n[j] else None
            out.append((j * b + 1, mean, self._knobs[j], self._time[j]))
        return out

    def step_at_time(self, t: float) -> int:
        """The last step reached `t` seconds into the run (from the buckets' times)."""
        best = 0
        for j, tj in enumerate(self._time):
            if tj is not None and tj <= t:
                best = j * self.bucket + 1
        return best

    def step_event(self, step: int) -> dict | None:
        """Step `step`'s own event, read back from the file (None if the log has no such step)."""
        if not self._index or step < 1:
            return None
        i = bisect_right(self._index, (step, math.inf)) - 1
        if i < 0:
            return None
        offset = self._index[i][1]
        end = self._index[i + 1][1] if i + 1 < len(self._index) else self._offset
        needle = _STEP_AT % step
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = f.read(end - offset)
        pos = data.find(needle)
        if pos >= 0:
            ev, _ = parse_line(data[data.rfind(b"\n", 0, pos) + 1:data.find(b"\n", pos)])
            return ev
        for raw in data.split(b"\n"):  # written with other spacing: look at each line
            ev, _ = parse_line(raw)
            if ev is not None and ev.get("type") == "step" and ev.get("step") == step:
                return ev
        return None

    @property
    def dropped_warnings(self) -> int:
        return self._dropped
