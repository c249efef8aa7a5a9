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
- `subscribe(lines=True)` gives a queue of what the writer encoded, as it encodes it:
  `(first seq, bytes)`, the bytes exactly the lines it hands the file (one event a
  line, consecutive seqs from the first); `finished` says when the writer has
  encoded the last event of a closed log (so the queue holds everything). The
  control socket streams these to attached screens: no event is encoded twice.
- The writer thread encodes batches of events (`events.encode`: standard JSON, step
  events formatted directly; a NaN or inf is kept as the string "NaN"/"Infinity"
  with its path in `$nonfinite`, and read back as the float) and hands them to
  the OS in one write (`events.sink`: no buffer of Python's in between), a few
  dozen times a second at most. `flush()` waits until everything emitted before
  it is written (`sync=True`: and on the disk, fsync), `close()` writes
  everything and closes the file.
- A write that fails (a full disk) loses nothing: the bytes not written stay in
  memory, `failed` says why (one line; None while writing works), the writer tries
  again every `RETRY_S` seconds (`retry()` at once), and once the file takes
  them the log is whole, with no line lost or repeated. Events still reach the
  subscribers meanwhile. The run core pauses the run while `failed` is set.
  `close()` tries for `CLOSE_TRY_S` seconds, then raises `LogError` saying how
  many events could not be written.

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
from schedtui.events.sink import Sink

_monotonic = time.monotonic
_RESERVED_HEADER = ("format", "version", "seq", "type")
_POLL_S = 0.05  # how often the writer thread looks at the queue; bounds its memory
_MAX_HELD = 1 << 20  # bytes held before a write is due anyway
RETRY_S = 2.0  # while the file takes no more (a full disk): how often the writer tries again
CLOSE_TRY_S = 5.0  # how long close() keeps trying to write what is left


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


def _lock(fd: int, path: Path) -> None:
    """Hold an exclusive lock on the open log `fd` until it is closed; LogError if another process has it."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
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
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            _lock(fd, self.path)
        except FileExistsError:
            raise LogError(f"{self.path}: already exists; an event log is never overwritten") from None
        except OSError as e:
            raise LogError(f"{self.path}: cannot create the event log ({e.strerror or e})") from None
        self._encode = _make_encoder()
        self._sink = Sink(fd)
        self._sink.add((self._encode(head) + "\n").encode("utf-8"))
        if not self._sink.drain():  # nothing is left behind: a log that cannot start is not a log
            why = self._sink.failed
            self._sink.close()
            self.path.unlink(missing_ok=True)
            raise LogError(f"{self.path}: cannot write the event log ({why})")
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
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            _lock(fd, self.path)  # before the repair: never cut a line another process is writing
        except OSError as e:
            raise LogError(f"{self.path}: cannot reopen the event log ({e.strerror or e})") from None
        self._sink = Sink(fd)
        try:
            self.header, seq, elapsed, self.repaired = _repair_tail(self.path)
        except BaseException as e:
            self._sink.close()
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
        self._line_subs: tuple = ()
        self._closed = False
        self._stopping = False
        self._flush_req = False
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._flushed_seq = seq  # every event up to here is written (handed to the OS)
        self._retry_req = False
        self._unwritten = 0
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

    def subscribe(self, lines: bool = False) -> queue.SimpleQueue:
        """A queue that receives every event emitted after this call; `lines`: instead, `(first seq, bytes)` for
        every batch the writer encodes after it (the bytes it hands the file)."""
        q: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            if lines:
                self._line_subs = self._line_subs + (q,)
            else:
                self._subs = self._subs + (q,)
        return q

    def unsubscribe(self, q: queue.SimpleQueue) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not q)
            self._line_subs = tuple(s for s in self._line_subs if s is not q)

    @property
    def finished(self) -> bool:
        """Closed, and the writer has encoded (and handed to its line subscribers) every event."""
        return self._closed and not self._thread.is_alive()

    @property
    def failed(self) -> str | None:
        """Why the file takes no more events for now (a full disk), or None: see the module docstring."""
        return self._sink.failed

    def flush(self, wait: bool = True, sync: bool = False) -> None:
        """Write everything emitted before this call (waits if `wait`, until it is written or a write fails);
        `sync` (with `wait`) also has the OS put it on the disk (fsync), as before a checkpoint. Raises
        LogError when it cannot be written now (`failed`)."""
        with self._lock:
            target = self._seq
        if self._thread.is_alive():
            self._flush_req = True
            self._wake.set()
            if wait:
                with self._flushed:
                    while self._flushed_seq < target and self._thread.is_alive():
                        self._flushed.wait(0.1)
                        if self._sink.failed is not None and not self._flush_req:
                            break
        if wait and self._flushed_seq < target and self._sink.failed is not None:
            raise LogError(f"{self.path}: cannot write the event log ({self._sink.failed}); the events are kept "
                           "and written once it can be")
        if sync and wait:
            try:
                self._sink.sync()
            except OSError as e:
                raise LogError(f"{self.path}: cannot sync the event log to the disk ({e.strerror or e})") from None

    def retry(self) -> str | None:
        """Try at once to write what a failed write left (see `failed`); returns `failed` after that try."""
        if self._sink.failed is not None and self._thread.is_alive():
            self._retry_req = True
            self._wake.set()
            deadline = time.monotonic() + 5.0
            while self._retry_req and self._thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
        return self._sink.failed

    def close(self) -> None:
        """Write everything (trying for CLOSE_TRY_S seconds when the file takes no more), stop the writer thread,
        close the file. Idempotent; LogError when events could not be written."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
        atexit.unregister(self.close)
        self._wake.set()
        self._thread.join()
        left, why = self._unwritten, self._sink.failed
        try:
            self._sink.close()
        except OSError:
            pass
        if left:
            raise LogError(f"{self.path}: {left} event(s) could not be written ({why}); the log ends before them")

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # ---- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        q, encode, sink = self._q, self._encode, self._sink
        interval = max(self.flush_interval, 0.0)
        poll = max(min(interval, _POLL_S), 0.001)
        last_write = last_try = time.monotonic()
        encoded = self._flushed_seq  # seq of the last event handed to the sink
        while True:
            self._wake.wait(poll)
            self._wake.clear()
            stopping = self._stopping  # read before draining: nothing is emitted after it is set
            forced, retry = self._flush_req, self._retry_req
            self._flush_req = False
            n = len(q)
            if n:
                batch = [q.popleft() for _ in range(n)]
                encoded = batch[-1]["seq"]
                data = ("\n".join(map(encode, batch)) + "\n").encode("utf-8")
                sink.add(data)
                for sub in self._line_subs:
                    sub.put((batch[0]["seq"], data))
            now = time.monotonic()
            if sink.pending:
                if sink.failed is None:
                    due = forced or stopping or now - last_write >= interval or len(sink.pending) > _MAX_HELD
                else:  # the file took no more: try again now and then, or when asked
                    due = retry or now - last_try >= RETRY_S
                if due:
                    last_try = now
                    if sink.drain():  # one syscall, however many events
                        last_write = now
            if retry:
                self._retry_req = False
            if not sink.pending:
                with self._flushed:
                    self._flushed_seq = encoded
                    self._flushed.notify_all()
            if stopping:
                end = time.monotonic() + CLOSE_TRY_S
                while sink.pending and not sink.drain() and time.monotonic() < end:
                    time.sleep(0.2)
                self._unwritten = encoded - self._flushed_seq if sink.pending else 0
                return
