"""SIGINT and SIGTERM while a run goes: stop it properly instead of dying mid-step; SIGHUP: detach.

`Interrupts()` is a context manager the CLI enters in the main thread (the only
thread Python runs signal handlers on) around a run. The first SIGINT or SIGTERM
records itself (`signum`, `exit_code` = 128 + signum: 130 SIGINT, 143 SIGTERM)
and calls `on_signal(signum)`, which the caller points at "stop the run at the
next step boundary with status interrupted" (the engine then writes a checkpoint
and the `end` event, so `schedtui resume` continues the run). A SIGINT before
there is a run to stop, or a second SIGINT, raises `Interrupted` (a
KeyboardInterrupt) as Ctrl-C always did; a repeated SIGTERM is ignored while the
run stops.

SIGHUP means the terminal is gone (a dropped SSH session), not that the run should
end: stdin, stdout and stderr that were that terminal are pointed at /dev/null at
once, so that nothing written later (progress, the UI restoring the screen) fails
on a dead terminal; `hung_up` is set and `on_hangup()` is called, where the CLI
closes the screen and lets the run go on headless, the output that went to the
terminal (`tty_fds`) now going to `RUN_DIR/output.log` (`redirect_output`). It
sets no `signum`: the run is not interrupted. A signal that is ignored on entry
(SIGHUP under `nohup`) stays ignored.

The handler only records, redirects and queues: it never prints. Pure stdlib; no
torch, textual or rich.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None),
                            getattr(signal, "SIGHUP", None)) if s is not None)


class Interrupted(KeyboardInterrupt):
    """A signal that ends the process before (or instead of) a clean stop; `exit_code` is 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def terminal_fds() -> tuple:
    """Which of stdin/stdout/stderr are a terminal (ask before it hangs up: then isatty says no)."""
    out = []
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                out.append(fd)
        except OSError:
            pass
    return tuple(out)


def detach_terminal(fds: tuple) -> None:
    """Point `fds` (the terminal's, now hung up) at /dev/null."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    for fd in fds:
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)


def redirect_output(path, fds: tuple = (1, 2)) -> bool:
    """Point `fds` (of stdout and stderr: 1, 2) at `path`, appended to (created 0600 if missing): where a run's
    output goes once it has no terminal. False when the file cannot be opened (or there is nothing to point)."""
    import sys

    fds = tuple(fd for fd in fds if fd in (1, 2))
    if not fds:
        return False

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError:
        return False
    for target in fds:
        try:
            os.dup2(fd, target)
        except OSError:
            pass
    os.close(fd)
    return True


class Interrupts:
    def __init__(self, on_signal: Callable[[int], None] | None = None):
        self.on_signal = on_signal  # set it once there is a run to stop; None: SIGINT raises, others record
        self.on_hangup: Callable[[], None] | None = None  # the terminal went away (called once)
        self.signum: int | None = None
        self.hung_up = False
        self.tty_fds: tuple = ()  # which of stdin/stdout/stderr were the terminal when the run began
        self._old: dict = {}

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            self.tty_fds = terminal_fds()
            for s in SIGNALS:
                if signal.getsignal(s) is signal.SIG_IGN:  # nohup (SIGHUP), a background job (SIGINT): keep ignoring
                    continue
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
        self._old = {}

    def _handle(self, signum: int, frame) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            if not self.hung_up:
                self.hung_up = True
                detach_terminal(self.tty_fds)
                if self.on_hangup is not None:
                    self.on_hangup()
            return
        first = self.signum is None
        if first:
            self.signum = signum
        if self.on_signal is None or (signum == signal.SIGINT and not first):
            if signum == signal.SIGINT:
                raise Interrupted(signum)
            return
        if first:
            self.on_signal(signum)
