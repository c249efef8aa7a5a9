"""`schedtui` in a real pseudo-terminal: the full-screen UI opens, and q then y ends the run and the log."""

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

from schedtui.events import read_log


def run_in_pty(args, keys_when, timeout=60.0, python_args=None):
    """Start `python -m schedtui ARGS` (or `python PYTHON_ARGS`) on an 80x24 pty; when a screen shows
    `keys_when[i][0]`, type its keys."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal program, as a person starts it
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, *(python_args or ["-m", "schedtui", *args])])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    seen, pending, t0 = b"", list(keys_when), time.monotonic()
    status = None
    while time.monotonic() - t0 < timeout:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                chunk = b""
            seen += chunk
        if pending and pending[0][0].encode() in seen:
            want, keys = pending.pop(0)
            seen = seen[seen.index(want.encode()) + len(want):]  # what came after it may be the next one's
            time.sleep(0.3)
            for key in keys:
                os.write(fd, key.encode())
                time.sleep(0.3)
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(code)
            break
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    os.close(fd)
    return status, seen


def test_ui_opens_in_a_terminal_and_q_y_ends_the_run(tmp_path):
    runs = tmp_path / "runs"
    args = ["moons", "--epochs", "20000", "--set", "data.n_samples=200", "--runs-dir", str(runs)]
    status, tail = run_in_pty(args, [("RUNNING", ["q"]), ("Stop it and quit?", ["y"])])
    assert status == 0, tail[-2000:]
    (run,) = runs.iterdir()
    log = read_log(run / "events.jsonl")
    assert log.events[-1]["type"] == "end" and log.events[-1]["status"] == "stopped"
    assert any(e["type"] == "step" for e in log.events)
    assert b"run stopped; log:" in tail
