"""Where the UI gets a run from: one small interface, so the screen never touches the engine.

A run source has:
- `header`: the log's header (None until known);
- `poll()`: the events since the last call, in order (the header first, once);
- `send(command, **args)`: a `concurrent.futures.Future` with the resulting event
  or a UserError;
- `error` (a start-up failure, else None), `live` (commands can change the run),
  `ended` (an `end` event has been polled);
- `history` and `history_seq`: a run that already has recorded history (a resumed
  run, a run the screen attaches to) says where: `history` is its events.jsonl
  (a Path; None: no history, everything comes through `poll()`), and
  `history_seq` the seq of the last event before the first one `poll()` returns
  (the file holds every event through it; `poll()` returns only events after it).
  Both are set by the time `header` is. The screen reads the file through
  `events.timeline.Timeline` (bounded memory, whatever the run's length), then
  applies the polled events it has not read: the file may have grown past
  `history_seq` meanwhile, so it skips polled events whose seq the file gave it.
- `pid` (optional): the process that runs the training, when it is not this one
  (an attached screen), for the resource line; without it the screen shows this
  process's use when the source runs the engine here (`engine` is not None).

- `LiveSource` starts the run on a background thread (building it imports torch,
  which takes seconds), so the first screen is up before torch is loaded.
- `LogSource` serves events that are already recorded (read-only): scripted
  events in tests, a log for review.

Must not import torch (only the callable handed to LiveSource does).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Callable

from schedtui.errors import UserError

MAX_EVENTS_PER_POLL = 50_000  # a frame never stalls on a backlog; the rest comes next frame


class LiveSource:
    live = True

    def __init__(self, start: Callable[[], object]):
        """`start()` builds and starts the run and returns an object with engine, header, events, run_dir."""
        self._start = start
        self.header: dict | None = None
        self.error: BaseException | None = None
        self.engine = None
        self.run_dir = None
        self._events: queue.SimpleQueue | None = None
        self._header_pending = False
        self._first: list[dict] = []  # the first queued event, read to learn history_seq
        self.history = None
        self.history_seq = 0
        self.ended = False
        self._thread = threading.Thread(target=self._boot, name="schedtui-start", daemon=True)

    def begin(self) -> None:
        """Start the run's start-up thread (once; later calls do nothing)."""
        if self._thread.ident is None:
            self._thread.start()

    def _boot(self) -> None:
        try:
            run = self._start()
        except BaseException as e:  # shown by the UI; a UserError is one line for the user
            self.error = e
            return
        self.engine, self.run_dir = run.engine, run.run_dir
        head_seq = run.header.get("seq", 0) if isinstance(run.header.get("seq"), int) else 0
        try:  # the queue holds every event from the one after what the log held when it was opened
            self._first = [run.events.get_nowait()]
            self.history_seq = self._first[0]["seq"] - 1
        except queue.Empty:
            self.history_seq = head_seq
        if self.history_seq > head_seq and run.run_dir is not None:  # a resumed run: its past is in its log
            self.history = run.run_dir / "events.jsonl"
        self.header = run.header
        self._header_pending = True
        self._events = run.events  # last: poll() starts here, the header and history known

    def wait_started(self, timeout: float | None = None) -> None:
        """Wait for the start-up thread (a quit during start-up must still stop what it starts)."""
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def poll(self) -> list[dict]:
        if self._events is None:
            return []
        out = []
        if self._header_pending:
            self._header_pending = False
            out.append(self.header)
        out += self._first
        self._first = []
        for ev in out[1:]:
            if ev["type"] == "end":
                self.ended = True
        get = self._events.get_nowait
        try:
            for _ in range(MAX_EVENTS_PER_POLL):
                ev = get()
                out.append(ev)
                if ev["type"] == "end":
                    self.ended = True
        except queue.Empty:
            pass
        return out

    def send(self, command: str, /, **args) -> Future:
        if self.engine is None:
            fut: Future = Future()
            fut.set_exception(UserError("the run is still starting"))
            return fut
        return self.engine.send(command, by="ui", **args)  # logged as the screen's


class LogSource:
    """Recorded events, served once each; commands are refused (read-only)."""

    live = False
    error = None
    engine = None
    history = None
    history_seq = 0

    def __init__(self, header: dict, events: list[dict], run_dir=None):
        self.header, self._events, self.run_dir = header, list(events), run_dir
        self._sent_header = False
        self.ended = any(e.get("type") == "end" for e in events)

    def begin(self) -> None:
        return None

    def poll(self) -> list[dict]:
        out = [] if self._sent_header else [self.header]
        self._sent_header = True
        out += self._events
        self._events = []
        return out

    def send(self, command: str, /, **args) -> Future:
        fut: Future = Future()
        fut.set_exception(UserError("this run is a recording: it cannot be changed"))
        return fut
