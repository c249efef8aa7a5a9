"""Writing the event log: `EventLog`, cheap to call from the training loop.

Contract:
- `EventLog(path, header)` creates `path` exclusively (never overwrites) and writes
  and flushes the header line at once.
- `EventLog.reopen(path)` continues an existing log (a resumed run): it keeps every
  complete line, cuts off a torn last line (one a killed process left half written;
  `repaired` says so), and goes on from the last event's `seq` and `time`, so the
  file stays one log with consecutive `seq`. Its `header` is the file's first line.
  An open log holds an exclusive advisory lock (flock, where the OS has it), so a
  log that another process is still writing is refused, never repaired under it.
- `emit(type, step, **fields)` numbers the event (`seq` 1, 2, ... with no gaps),
  stamps `time` (seconds since the log was opened, monotonic), hands it to every
  subscriber queue and to a background writer thread, and returns the dict. It does
  no JSON encoding and no file I/O, so it costs a few microseconds. Thread-safe;
  events reach the file and the subscribers in `seq` order. The dict is shared with
  the writer and subscribers: don't mutate it afterwards.
- `emit_many(type, items)` does the same for a batch of (step, fields) at once (the
  engine's step events, read in batches): one lock and one timestamp for all.
- The writer thread encodes batches of events (`events.encode`: standard JSON, step
  events formatted directly; a NaN or inf is kept as the string "NaN"/"Infinity"
  with its path in `$nonfinite`, and read back as the float),
  writes them in one call, and flushes to the OS at least every
  `flush_interval` seconds while anything is unflushed. `flush()` forces that;
  `close()` writes everything, flushes and closes the file.
- A write error (disk full) is stored and raised, as `LogError`, from the next
  `emit`/`flush`/`close` (once); after it, events still reach subscribers but are
  no longer written.

Pure Python, stdlib only; imports nothing from schedtui except `schedtui.errors`,
`schedtui.events.format` and `schedtui.events.encode`, and no torch, textual or rich.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import threading
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no lock, nothing else changes
    fcntl = None

from schedtui.events.encode import make_encoder as _make_encoder
from schedtui.events.format import EVENT_TYPES, FORMAT, VERSION, LogError

_monotonic = time.monotonic
_RESERVED_HEADER = ("format", "version", "seq", "type")
_POLL_S = 0.05  # how often the writer thread looks at the queue; bounds its memory


_EMITTABLE = EVENT_TYPES - {"header"}
_TAIL_BLOCK = 1 << 16


def _as_event(raw: bytes) -> dict | None:
    try:
        ev = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too; RecursionError: [[[[...
        return None
    if isinstance(ev, dict) and isinstance(ev.get("seq"), int) and isinstance(ev.get("type"), str):
        return ev
    return None


def _lock(f, path: Path) -> None:
    """Hold an exclusive lock on the open log `f` until it is closed; LogError if another process has it."""
    if fcntl is None:
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise LogError(f"{path}: another process is writing this log (is the run still going?)") from None
    except OSError:  # a file system without locks: go on unlocked
        pass


def _repair_tail(path: Path) -> tuple[dict, int, float, str | None]:
    """(header, last seq, last time, what was repaired) of an existing log; cuts a torn last line."""
    with open(path, "r+b") as f:
        first = f.readline()
        head = _as_event(first) if first.endswith(b"\n") else None
        if head is None or head.get("format") != FORMAT or head.get("type") != "header":
            raise LogError(f"{path}: not a schedtui event log; cannot continue it")
        size = f.seek(0, 2)
        n = _TAIL_BLOCK
        while True:  # read back from the end until the last complete line is in view
            lo = max(len(first), size - n)
            f.seek(lo)
            buf = f.read(size - lo)
            last_nl = buf.rfind(b"\n")
            prev_nl = buf.rfind(b"\n", 0, max(last_nl, 0))
            if lo == len(first) or prev_nl >= 0:
                break
            n *= 2
        tail = buf[last_nl + 1:]
        repaired = None
        if tail and _as_event(tail) is not None:  # a whole event whose newline never reached the file
            f.write(b"\n")
            line = tail
        else:
            if tail:
                f.truncate(lo + last_nl + 1)
                repaired = f"cut a torn last line ({len(tail)} bytes) off {path.name}"
            line = buf[prev_nl + 1:last_nl] if last_nl >= 0 else b""
    if not line:  # nothing after the header
        return head, 0, 0.0, repaired
    last = _as_event(line)
    if last is None:
        raise LogError(f"{path}: the last complete line is not an event; cannot continue the log")
    t = last.get("time")
    return head, last["seq"], float(t) if isinstance(t, (int, float)) else 0.0, repaired


class EventLog:
    """An append-only, exclusively created JSON-lines event log with a header line."""

    def __init__(self, path, header: dict, flush_interval: float = 1.0):
        self.path = Path(path)
        self.flush_interval = float(flush_interval)
        clash = [k for k in _RESERVED_HEADER if k in header]
        if clash:
            raise ValueError(f"header may not set {', '.join(clash)}")
        wall = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        head = {"format": FORMAT, "version": VERSION, "seq": 0, "type": "header", "time": 0.0, "wall": wall, **header}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "x", encoding="utf-8", newline="\n")
            _lock(self._f, self.path)
        except FileExistsError:
            raise LogError(f"{self.path}: already exists; an event log is never overwritten") from None
        except OSError as e:
            raise LogError(f"{self.path}: cannot create the event log ({e.strerror or e})") from None
        self._encode = _make_encoder()
        try:
            self._f.write(self._encode(head) + "\n")
            self._f.flush()
        except OSError as e:
            self._f.close()
            raise LogError(f"{self.path}: cannot write the event log ({e.strerror or e})") from None
        self.header = head
        self.repaired: str | None = None
        self._start(seq=0, elapsed=0.0)

    @classmethod
    def reopen(cls, path, flush_interval: float = 1.0) -> "EventLog":
        """Continue the log at `path` (see the module docstring); LogError when it is not one."""
        self = cls.__new__(cls)
        self.path = Path(path)
        self.flush_interval = float(flush_interval)
        try:
            self._f = open(self.path, "a", encoding="utf-8", newline="\n")
            _lock(self._f, self.path)  # before the repair: never cut a line another process is writing
        except OSError as e:
            raise LogError(f"{self.path}: cannot reopen the event log ({e.strerror or e})") from None
        try:
            self.header, seq, elapsed, self.repaired = _repair_tail(self.path)
        except BaseException as e:
            self._f.close()
            if not isinstance(e, OSError):
                raise
            raise LogError(f"{self.path}: cannot reopen the event log ({e.strerror or e})") from None
        self._encode = _make_encoder()
        self._start(seq=seq, elapsed=elapsed)
        return self

    def _start(self, seq: int, elapsed: float) -> None:
        self._t0 = time.monotonic() - elapsed
        self._seq = seq
        self._lock = threading.Lock()  # seq assignment + enqueue, so the file is in seq order
        self._q: deque = deque()  # append/popleft are atomic; the writer drains it in batches
        self._q_append = self._q.append
        self._subs: tuple = ()
        self._closed = False
        self._stopping = False
        self._flush_req = False
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._flushed_seq = seq  # every event up to here is flushed to the OS
        self._error: LogError | None = None
        self._error_reported = False
        self._thread = threading.Thread(target=self._run, name=f"schedtui-eventlog:{self.path.name}", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # a daemon thread would otherwise lose the queued tail

    # ---- the caller's side ------------------------------------------------------------------
    def emit(self, type: str, step: int, **fields) -> dict:
        """Number, timestamp and queue one event; returns it. No I/O, no encoding."""
        if type not in _EMITTABLE:
            raise ValueError(f"unknown event type {type!r}")
        if fields and ("seq" in fields or "time" in fields):
            raise ValueError("emit: 'seq' and 'time' are set by the log")
        if self._error is not None:
            self._raise_error()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.path}: emit after close")
            self._seq = seq = self._seq + 1
            ev = {"seq": seq, "type": type, "step": step, "time": round(_monotonic() - self._t0, 6), **fields}
            self._q_append(ev)
            for s in self._subs:
                s.put(ev)
        return ev

    def emit_many(self, type: str, items: list) -> list[dict]:
        """`emit(type, step, **fields)` for each (step, fields) in `items`, under one lock and one timestamp;
        returns the events. `fields` dicts are not copied: don't reuse them."""
        if type not in _EMITTABLE:
            raise ValueError(f"unknown event type {type!r}")
        if self._error is not None:
            self._raise_error()
        out = []
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.path}: emit after close")
            seq, t = self._seq, round(_monotonic() - self._t0, 6)
            subs, append = self._subs, self._q_append
            for step, fields in items:
                if "seq" in fields or "time" in fields:
                    raise ValueError("emit: 'seq' and 'time' are set by the log")
                seq += 1
                ev = {"seq": seq, "type": type, "step": step, "time": t, **fields}
                self._seq = seq
                append(ev)
                for s in subs:
                    s.put(ev)
                out.append(ev)
        return out

    def subscribe(self) -> queue.SimpleQueue:
        """A queue that receives every event emitted after this call."""
        q: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            self._subs = self._subs + (q,)
        return q

    def unsubscribe(self, q: queue.SimpleQueue) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not q)

    def flush(self, wait: bool = True, sync: bool = False) -> None:
        """Write and flush to the OS everything emitted before this call (waits if `wait`); `sync` (with
        `wait`) also has the OS put it on the disk (fsync), as before a checkpoint."""
        with self._lock:
            target = self._seq
        if self._thread.is_alive():
            self._flush_req = True
            self._wake.set()
            if wait:
                with self._flushed:
                    while self._flushed_seq < target and self._error is None and self._thread.is_alive():
                        self._flushed.wait(0.1)
        if self._error is not None:
            self._raise_error()
        if sync and wait and not self._f.closed:
            try:
                os.fsync(self._f.fileno())
            except OSError as e:
                self._set_error(e)
                self._raise_error()

    def close(self) -> None:
        """Write everything, flush, stop the writer thread and close the file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
        atexit.unregister(self.close)
        self._wake.set()
        self._thread.join()
        try:
            self._f.close()
        except OSError as e:
            self._set_error(e)
        if self._error is not None:
            self._raise_error()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _set_error(self, e: OSError) -> None:
        if self._error is None:
            self._error = LogError(f"{self.path}: cannot write the event log ({e.strerror or e}); events from here on are not saved")

    def _raise_error(self) -> None:
        if not self._error_reported:
            self._error_reported = True
            raise self._error

    # ---- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        q, encode = self._q, self._encode
        interval = max(self.flush_interval, 0.0)
        poll = max(min(interval, _POLL_S), 0.001)
        last_flush = time.monotonic()
        written = self._flushed_seq  # seq of the last event handed to the file
        dirty = False
        while True:
            self._wake.wait(poll)
            self._wake.clear()
            stopping = self._stopping  # read before draining: nothing is emitted after it is set
            forced = self._flush_req
            self._flush_req = False
            n = len(q)
            if n:
                batch = [q.popleft() for _ in range(n)]
                written = batch[-1]["seq"]
                if self._error is None:
                    try:
                        self._f.write("\n".join(map(encode, batch)))
                        self._f.write("\n")
                        dirty = True
                    except OSError as e:
                        self._set_error(e)
            now = time.monotonic()
            if dirty and (forced or stopping or now - last_flush >= interval):
                try:
                    self._f.flush()  # one syscall per flush, however many events
                except OSError as e:
                    self._set_error(e)
                dirty, last_flush = False, now
            if not dirty:
                with self._flushed:
                    self._flushed_seq = written
                    self._flushed.notify_all()
            if stopping:
                return
