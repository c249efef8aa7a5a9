"""The training's own output kept while a screen has the terminal: every line, with the step it came at.

`OutputCapture(path, step)` sends this process's output to `path` (the run's
`output.log`), each line as `[step N] line`, `step()` telling the step of the
moment:
- Python's `sys.stdout`/`sys.stderr` (prints, warnings, logging) are replaced by
  streams that tag each line with the step *when it is written*, so a print
  after step 50 says step 50 however busy the machine is;
- the file descriptors 1 and 2 (what C extensions and child processes write)
  point at a pipe that a thread reads, tagging each line when it is read.
`close()` puts everything back and writes what is left. A run started by
`schedtui` on a terminal (its screen in a child process) and an own loop under
its screen both capture this way; the screen's output pane (`o`) shows the last
lines of that file. Pure stdlib; no
torch, textual or rich.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from pathlib import Path

_LONGEST = 65536  # a line longer than this (a progress bar without newlines) is written in pieces


class _Sink:
    """The file both paths write to: whole tagged lines, under one lock. `path` may be a callable that says
    None until the run has a directory: lines wait in memory (up to HELD) until it does."""

    HELD = 10_000

    def __init__(self, path, step):
        self._path = path
        self._file = None
        self._held: list[bytes] = []
        self._step, self._lock = step, threading.Lock()
        if not callable(path):
            self._file = open(path, "ab", buffering=0)

    def step(self) -> int:
        try:
            return int(self._step())
        except Exception:
            return 0

    def lines(self, lines: list[bytes], step: int | None = None) -> None:
        if not lines:
            return
        step = self.step() if step is None else step
        data = [b"[step %d] %s\n" % (step, line) for line in lines]
        with self._lock:
            if self._file is None:
                path = self._path()
                if path is None:  # no run directory yet: held
                    self._held = (self._held + data)[-self.HELD:]
                    return
                try:
                    self._file = open(path, "ab", buffering=0)
                except OSError:
                    return
                data, self._held = self._held + data, []
            try:
                self._file.write(b"".join(data))
            except (OSError, ValueError):  # a full disk (or closed): the line is lost, the training is not
                pass

    def close(self, fallback=None) -> None:
        """Close the file; lines still held (the run never got a directory) go to `fallback` (a text stream)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            elif self._held and fallback is not None:
                try:
                    fallback.write(b"".join(self._held).decode("utf-8", "replace"))
                    fallback.flush()
                except (OSError, ValueError):
                    pass
            self._held = []


class _StepStream(io.TextIOBase):
    """A text stream standing in for sys.stdout or sys.stderr: each line tagged with the step it was written at."""

    def __init__(self, sink: _Sink, fd: int, original=None):
        self._sink, self._fd, self._original = sink, fd, original
        self._rest, self._lock = "", threading.Lock()

    @property
    def encoding(self):  # what code that writes bytes by hand asks for
        return getattr(self._original, "encoding", "utf-8") or "utf-8"

    @property
    def errors(self):
        return "backslashreplace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:  # faulthandler and subprocess write to the descriptor (captured too, by OutputCapture)
        return self._fd

    @property
    def buffer(self):
        """For code that writes bytes (`sys.stdout.buffer.write`): the same lines, decoded."""
        return _Bytes(self)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        step = self._sink.step()
        with self._lock:
            parts = (self._rest + text).split("\n")
            self._rest = parts.pop()
            if len(self._rest) > _LONGEST:
                parts.append(self._rest)
                self._rest = ""
        self._sink.lines([p.encode("utf-8", "backslashreplace") for p in parts], step)
        return len(text)

    def flush(self) -> None:  # a partial line waits for its newline (or close)
        pass

    def finish(self) -> None:
        with self._lock:
            rest, self._rest = self._rest, ""
        if rest:
            self._sink.lines([rest.encode("utf-8", "backslashreplace")])


class _Bytes(io.RawIOBase):
    """A `_StepStream`'s `buffer`."""

    def __init__(self, text: _StepStream):
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._text.write(bytes(data).decode("utf-8", "backslashreplace"))
        return len(data)


class OutputCapture:
    def __init__(self, path, step):
        """`path`: the file, or a callable that says None until the run has a directory (lines wait in memory,
        and go to the terminal at `close()` if it never has one)."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        self._sink = _Sink(path if callable(path) else Path(path), step)
        self._saved = (os.dup(1), os.dup(2))
        self._saved_lock = threading.Lock()  # to_terminal never writes to a descriptor close() let go
        self._r, w = os.pipe()
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(w)
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = self._out = _StepStream(self._sink, 1, self._streams[0])
        sys.stderr = self._err = _StepStream(self._sink, 2, self._streams[1])
        self._thread = threading.Thread(target=self._copy, name="schedtui-output", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        rest = b""
        while True:
            try:
                chunk = os.read(self._r, 65536)
            except OSError:
                break
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            self._sink.lines(lines)
        if rest:
            self._sink.lines([rest])
        os.close(self._r)

    def retarget(self, path) -> None:
        """The terminal is gone (a hang-up): what would go back to it (`to_terminal`, and fds 1 and 2 after
        `close()`) goes to `path` instead, appended to."""
        with self._saved_lock:
            if not self._saved:
                return
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError:
                fd = os.open(os.devnull, os.O_WRONLY)
            for saved in self._saved:
                os.dup2(fd, saved)
            os.close(fd)

    def to_terminal(self, text: str) -> None:
        """Write `text` to the stderr that was there before the capture (the terminal), not to the file."""
        with self._saved_lock:
            if not self._saved:
                return
            try:
                os.write(self._saved[1], text.encode("utf-8", "replace"))
            except OSError:  # the terminal is gone
                pass

    def close(self) -> None:
        """Back to the terminal; the lines still waiting are written first."""
        self._out.finish()
        self._err.finish()
        if sys.stdout is self._out:  # (unless someone replaced it since)
            sys.stdout = self._streams[0]
        if sys.stderr is self._err:
            sys.stderr = self._streams[1]
        with self._saved_lock:
            os.dup2(self._saved[0], 1)  # the pipe's last writer goes: the reader sees its end
            os.dup2(self._saved[1], 2)
            for fd in self._saved:
                os.close(fd)
            self._saved = ()
        self._thread.join(5)
        self._sink.close(fallback=sys.stderr)
