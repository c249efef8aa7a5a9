"""The live screen of a run in this process, drawn by a child process: the training keeps this one's GIL.

`schedtui PRESET` on a terminal trains in its own process and shows the screen
from a second one (`schedtui attach --run-from-fd FD`), attached to the run's
control socket like any other screen: its frames (about 9 ms of Python each, 5 a
second) then never hold the lock the training thread needs.

`ScreenProcess()` starts that child at once, on this process's terminal, before
torch loads: it shows "starting" until `started(run_dir)` tells it where the run
is (one line on a pipe whose read end is the child's FD); `dismiss()` asks it to
close (the pipe's end does too: the parent died, or the run could not start).
The child's exit status says what the person chose (`exit_code`):

- `DETACHED` (0): detach (q then d): the run goes on here, headless;
- `QUIT` (3): the screen was closed without detaching while the run went (q during
  start-up, ctrl+q): the run stops, as it did when the screen was in this process;
- anything else: the screen failed; the run goes on (a fault loses nothing).

Stdlib only (and safe_text); no torch, textual or rich.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DETACHED = 0
QUIT = 3
STARTED = b"run "  # the line that names the run: b"run " + RUN_DIR + b"\n"
EXIT = b"exit\n"  # the line that asks the screen to close
NICE = 5  # the screen yields the CPU to the training where both want it


def _lower_priority() -> None:  # in the child, before it runs the screen
    try:
        os.nice(NICE)
    except OSError:
        pass


class ScreenProcess:
    def __init__(self, refresh_hz: float, cmd: list[str] | None = None, **popen):
        """`cmd`: the screen's command, without the pipe's fd (default: this Python's `schedtui attach`);
        `popen`: more for `subprocess.Popen` (its terminal: this process's stdin, stdout and stderr)."""
        r, self._w = os.pipe()
        os.set_inheritable(r, True)
        cmd = cmd or [sys.executable, "-m", "schedtui", "attach", "--refresh-hz", repr(refresh_hz)]
        try:
            self.proc = subprocess.Popen([*cmd, "--run-from-fd", str(r)], pass_fds=(r,), preexec_fn=_lower_priority,
                                         **popen)
        except BaseException:
            os.close(self._w)
            raise
        finally:
            os.close(r)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _say(self, line: bytes) -> None:
        if self._w is None:
            return
        try:
            os.write(self._w, line)
        except OSError:  # the screen has gone
            pass

    def started(self, run_dir: Path) -> None:
        """The run has started: the screen attaches to it."""
        self._say(STARTED + os.fsencode(str(Path(run_dir).absolute())) + b"\n")

    def dismiss(self) -> None:
        """Ask the screen to close (it restores the terminal); the pipe's end says the same."""
        self._say(EXIT)
        if self._w is not None:
            os.close(self._w)
            self._w = None

    @property
    def exit_code(self) -> int | None:
        """None while the screen is up."""
        return self.proc.poll()

    def wait(self, timeout: float = 10.0) -> int:
        """Dismiss the screen and wait for it (killed after `timeout`): it owns the terminal until it exits."""
        self.dismiss()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def closed_while_running(code: int, run_dir: Path, who: str, shell_back: str = "ctrl+z, then bg") -> tuple[str, str]:
    """The screen exited with `code` (not QUIT) while the run goes on here: the `detach` event's reason ("key" or
    "screen") and what to tell the person (`who` goes on: "the run", "your loop")."""
    from schedtui.safe_text import visible

    reason = "key" if code == DETACHED else "screen"
    said = "detached" if reason == "key" else f"the screen closed by itself (exit status {code}); the run is not lost"
    d = visible(run_dir)
    return reason, (f"schedtui: {said}; {who} goes on in this process (pid {os.getpid()})\n"
                    f"  its output:           {d}/output.log\n"
                    f"  the screen again:     schedtui attach {d}\n"
                    f"  this shell back:      {shell_back}\n")
