"""The training's own output kept while a screen has the terminal: every line, with the step it came at.

`OutputCapture(path, step)` points this process's stdout and stderr (the file
descriptors 1 and 2: prints, warnings, logging, and what C extensions write)
at a pipe; a thread reads it and appends each line to `path` (the run's
`output.log`) as `[step N] line`, `step()` telling the step of the moment. Python's
`sys.stdout`/`sys.stderr` are line-buffered meanwhile, so a print arrives at
once. `close()` puts the descriptors back and writes what is left. The live
screen's console pane shows the last lines of that file. Pure stdlib; no torch,
textual or rich.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path


class OutputCapture:
    def __init__(self, path: Path, step):
        self.path, self.step = Path(path), step
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        self._saved = (os.dup(1), os.dup(2))
        self._r, w = os.pipe()
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(w)
        self._buffering = []
        for stream in (sys.stdout, sys.stderr):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                self._buffering.append((stream, getattr(stream, "line_buffering", False)))
                reconfigure(line_buffering=True)
        self._file = open(self.path, "ab", buffering=0)
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
            if lines:
                step = self._step()
                self._write(b"".join(b"[step %d] %s\n" % (step, line) for line in lines))
        if rest:
            self._write(b"[step %d] %s\n" % (self._step(), rest))
        os.close(self._r)

    def _step(self) -> int:
        try:
            return int(self.step())
        except Exception:
            return 0

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError:  # a full disk: the line is lost, the training is not
            pass

    def close(self) -> None:
        """Back to the terminal; the lines still in the pipe are written first."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(self._saved[0], 1)  # the pipe's last writer goes: the reader sees its end
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self._thread.join(5)
        for stream, was in self._buffering:
            stream.reconfigure(line_buffering=was)
        self._file.close()
