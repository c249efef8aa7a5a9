"""The run source of a screen whose parent process is starting the run (`control.own_screen`).

`OwnedSource(fd)` reads its parent's lines from the pipe `fd` on a thread: until
the run has started it has no header (the screen says "starting"); `run DIR`
connects to that run's control socket as `ui` (the screen the run was started
with: its commands are logged `by: "ui"`) and from then on it is a
`ui.remote.RemoteSource` (the run's history from its log, then live); `exit`, or
the pipe's end (the parent is gone, or the run could not start: the parent says
why on the terminal once this screen has closed), sets `dismissed`, and the
screen closes. A connection that cannot be made is `error`, as for `attach`.
Has the interface of `ui.source`; `pid` is the training's process. No torch.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from pathlib import Path

from schedtui.control.own_screen import EXIT, STARTED
from schedtui.errors import UserError


class OwnedSource:
    live = True
    engine = None  # the run is in the parent process: this one only shows and steers it

    def __init__(self, fd: int):
        self._file = os.fdopen(fd, "rb", buffering=0)
        self.remote = None  # the RemoteSource, once the run has started
        self.dismissed = False  # the parent asked the screen to close (or went away)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, name="schedtui-owned", daemon=True)

    def begin(self) -> None:
        if self._thread.ident is None:
            self._thread.start()

    def _read(self) -> None:
        from schedtui.control import runs
        from schedtui.ui.remote import RemoteSource

        rest = b""
        while True:
            try:
                chunk = self._file.read(4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                if line + b"\n" == EXIT:
                    self.dismissed = True
                elif line.startswith(STARTED) and self.remote is None:
                    run_dir = Path(os.fsdecode(line[len(STARTED):]))
                    try:
                        conn, _ = runs.connect(run_dir, "ui")  # its keys are logged as the screen's own
                        remote = RemoteSource(conn, run_dir)
                    except (UserError, OSError) as e:
                        self._error = e if isinstance(e, UserError) else UserError(f"{run_dir}: {e}")
                        continue
                    remote.begin()
                    self.remote = remote
        self.dismissed = True
        self._file.close()

    # ---- what the screen reads: the run's, once it has started --------------------------------
    def __getattr__(self, name):  # header, history, history_seq, run_dir, pid, ended
        if name in ("header", "history", "run_dir", "pid"):
            return getattr(self.remote, name, None)
        if name == "history_seq":
            return getattr(self.remote, name, 0)
        if name == "ended":
            return getattr(self.remote, name, False)
        raise AttributeError(name)

    @property
    def error(self) -> BaseException | None:
        if self._error is not None:
            return self._error
        return None if self.remote is None else self.remote.error

    def poll(self) -> list[dict]:
        return [] if self.remote is None else self.remote.poll()

    def send(self, command: str, /, **args) -> Future:
        if self.remote is None:
            fut: Future = Future()
            fut.set_exception(UserError("the run is still starting"))
            return fut
        return self.remote.send(command, **args)

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()
