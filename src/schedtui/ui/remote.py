"""A run source for a run in another process: the screen attached through the run's control socket.

`RemoteSource(conn, run_dir)` takes a connection (`control.client.Connection`,
hello done, role "attach") and has the interface of `ui.source`: `header` (the
log's first line), `poll()`, `send()`, `live`, `ended`, `error`, `begin()`.
`engine` is None: this process holds no run, so the screen's quit only detaches
(the run goes on; `send("stop")` is the way to stop it); `pid` is the run's
process (its hello says), for the resource line.

The run's past is the screen's `history` (the log file, read by the screen with
bounded memory, however long the run: see `ui.source`); `poll()` returns the
header, then the events after `history_seq`, the last one recorded when the source
was made (`last_recorded`), in seq order with no gap and no duplicate: after the
server answers the `events` request, everything emitted before it is in the log
file or is about to be flushed there, so the reader thread reads the file from
there (`read_recorded`), then takes streamed events past what it read. A gap (events the log had not flushed
yet) is filled from the file as soon as the log's writer flushes it; told that it
fell behind, the source reads the file again and asks for the stream anew. When
the connection closes, whatever the file holds is read; without an `end` event
(the run's process died) `error` says so and the screen closes with that line.

Commands carry a request id; their replies resolve the `Future` that `send`
returned (the event, or a UserError with the run's one-line reason). No torch.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from schedtui.errors import UserError
from schedtui.events.reader import iter_events
from schedtui.ui.source import MAX_EVENTS_PER_POLL

GAP_WAIT_S = 3.0  # at most this long for the log's writer to flush events the stream skipped (it flushes each second)


def read_recorded(path: Path, offset: int, after: int) -> tuple[list[dict], int]:
    """(events with seq > `after` in the complete lines from byte `offset` on, the offset after the last
    complete line). The history of an attached screen comes from here."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    out = []
    for raw in data[:end].split(b"\n"):
        if not raw.startswith(b'{"seq":'):
            continue
        try:
            ev = json.loads(raw)
        except ValueError:  # a damaged line: replay shows what it skipped; the live screen goes on
            continue
        if isinstance(ev, dict) and isinstance(ev.get("seq"), int) and ev["seq"] > after:
            out.append(ev)
    return out, offset + end


def last_recorded(path: Path) -> tuple[int, int]:
    """(an offset in the log at `path`, the seq of the last event before it): where an attached screen's
    history ends: after the last complete event line, or before it when that is the run's `end` (left for
    `poll()`, so the screen sees the run end). Reads the file's tail only."""
    with open(path, "rb") as f:
        end = f.seek(0, 2)
        size = 1 << 16
        while True:
            start = max(0, end - size)
            f.seek(start)
            done = f.read(end - start)
            done = done[:done.rfind(b"\n") + 1]
            line_end = start + len(done)
            for raw in reversed(done.split(b"\n")[:-1]):
                line_start = line_end - len(raw) - 1
                if raw.startswith(b'{"seq":') and line_start >= start and (start == 0 or line_start > start):
                    try:
                        ev = json.loads(raw)
                    except ValueError:  # a damaged line: the one before it
                        ev = None
                    if isinstance(ev, dict) and isinstance(ev.get("seq"), int):
                        return (line_start, ev["seq"] - 1) if ev.get("type") == "end" else (line_end, ev["seq"])
                line_end = line_start
            if start == 0:
                return 0, 0
            size *= 4


class RemoteSource:
    live = True
    engine = None  # no run in this process: quitting the screen detaches

    def __init__(self, conn, run_dir):
        self.conn, self.run_dir = conn, Path(run_dir)
        pid = conn.info.get("pid")
        self.pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else None  # the training's process
        self.log_path = self.run_dir / "events.jsonl"
        events = iter_events(self.log_path)
        try:
            self.header = next(events)
        finally:
            events.close()
        self._offset, self._last = last_recorded(self.log_path)  # the past: the screen reads it as `history`
        self.history, self.history_seq = self.log_path, self._last
        self.error: BaseException | None = None
        self.ended = False
        self._header_pending = True
        self._events: deque = deque()  # the events taken (seq > history_seq), for poll()
        self._waiting: dict[int, Future] = {}
        self._stream_id: int | None = None
        self._closed = False  # no more commands: the connection closed
        self._detached = False  # closed by this side (the screen quit)
        self._over = False  # the events taken end with the run's `end`
        self._thread = threading.Thread(target=self._run, name="schedtui-attach", daemon=True)

    # ---- the screen's side -----------------------------------------------------------------------
    def begin(self) -> None:
        if self._thread.ident is None:
            self._thread.start()

    def poll(self) -> list[dict]:
        out = []
        if self._header_pending:
            self._header_pending = False
            out.append(self.header)
        pop = self._events.popleft
        try:
            for _ in range(MAX_EVENTS_PER_POLL):
                ev = pop()
                out.append(ev)
                t = ev.get("type")
                if t == "end":
                    self.ended = True
                elif t == "resume" and "checkpoint" in ev:  # an ended run resumed: its old end is history
                    self.ended = False
        except IndexError:
            pass
        return out

    def send(self, command: str, /, **args) -> Future:
        fut: Future = Future()
        if self._closed or self.ended:
            fut.set_exception(UserError("the run has ended" if self.ended else "not connected to the run"))
            return fut
        rid = self.conn.next_id()
        self._waiting[rid] = fut
        try:
            self.conn.send({"id": rid, "op": "send", "command": command, "args": args})
        except UserError as e:
            if self._waiting.pop(rid, None) is not None and not fut.done():  # (or the reader answered it)
                fut.set_exception(e)
        return fut

    def close(self) -> None:
        """Detach: close the connection (the run goes on)."""
        self._closed = self._detached = True
        self.conn.close()

    # ---- the reader thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.conn.sock.settimeout(None)
            self._ask_stream()
            while True:
                msg = self.conn.read()
                if msg is None:
                    break
                if "seq" in msg:
                    self._take(msg)
                elif msg.get("id") is not None and msg.get("id") == self._stream_id:
                    self._catch_up()  # everything before the stream began is in the file now (or soon)
                elif msg.get("id") in self._waiting:
                    fut = self._waiting.pop(msg["id"])
                    if msg.get("ok"):
                        fut.set_result(msg.get("result") or {})
                    else:
                        fut.set_exception(UserError(str(msg.get("error", "refused"))))
                elif msg.get("notice") == "behind":  # the server stopped streaming to us: the file has it
                    self._catch_up()
                    self._ask_stream()
                elif "error" in msg:
                    raise UserError(str(msg["error"]))
        except Exception as e:  # the connection broke (or the run said something we cannot read)
            if not self._detached:
                self.error = e if isinstance(e, UserError) else UserError(f"lost the connection to the run ({type(e).__name__}: {e})")
        finally:
            self._closed = True
            for fut in list(self._waiting.values()):
                if not fut.done():
                    fut.set_exception(UserError("the connection to the run closed"))
            self._waiting.clear()
        try:
            self._catch_up()  # the run ended (or died): the rest is in its log
        except OSError:
            pass
        if self.error is None and not self._over and not self._detached:
            self.error = UserError(f"{self.run_dir}: the run's process went away without ending its log (killed?)")

    def _ask_stream(self) -> None:
        self._stream_id = self.conn.next_id()
        self.conn.send({"id": self._stream_id, "op": "events", "from": self._last + 1})

    def _catch_up(self, until: int | None = None) -> None:
        """Take what the log file holds past the last event taken; with `until`, wait (briefly) for the log's
        writer to flush up to that seq."""
        deadline = time.monotonic() + GAP_WAIT_S
        while True:
            events, self._offset = read_recorded(self.log_path, self._offset, self._last)
            for ev in events:
                self._append(ev)
            if until is None or self._last >= until or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def _take(self, ev: dict) -> None:
        seq = ev["seq"]
        if seq <= self._last:
            return  # read from the file already
        if seq > self._last + 1:
            self._catch_up(until=seq - 1)
            if seq <= self._last:
                return
        self._append(ev)

    def _append(self, ev: dict) -> None:
        self._last = ev["seq"]
        t = ev.get("type")
        if t == "end":
            self._over = True
        elif t == "resume" and "checkpoint" in ev:
            self._over = False
        self._events.append(ev)
