"""`schedtui` in a real pseudo-terminal: the full-screen UI opens; q then s ends the run and the log, q then d
detaches (the run goes on, headless, until stopped from another shell)."""

import fcntl
import os
import pty
import select
import struct
import sys
import subprocess
import termios
import threading
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


def test_ui_opens_in_a_terminal_and_q_s_ends_the_run(tmp_path):
    runs = tmp_path / "runs"
    args = ["moons", "--epochs", "20000", "--set", "data.n_samples=200", "--runs-dir", str(runs)]
    status, tail = run_in_pty(args, [("RUNNING", ["q"]), ("The run is still going", ["s"])])
    assert status == 0, tail[-2000:]
    (run,) = runs.iterdir()
    log = read_log(run / "events.jsonl")
    assert log.events[-1]["type"] == "end" and log.events[-1]["status"] == "stopped"
    assert any(e["type"] == "step" for e in log.events)
    assert b"run stopped; log:" in tail


def test_q_d_detaches_the_screen_and_the_run_goes_on_until_ctl_stops_it(tmp_path):
    runs = tmp_path / "runs"
    args = ["moons", "--epochs", "20000", "--set", "data.n_samples=200", "--runs-dir", str(runs)]
    stopped = []

    def stop_once_detached() -> None:  # another shell, once the screen has gone and more steps are logged
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            logs = list(runs.glob("*/events.jsonl"))
            if logs:
                events = read_log(logs[0], strict=False).events
                detach = [e for e in events if e["type"] == "detach"]
                if detach and sum(e["type"] == "step" and e["step"] > detach[0]["step"] + 20 for e in events):
                    done = subprocess.run([sys.executable, "-m", "schedtui", "ctl", str(logs[0].parent), "stop"],
                                          capture_output=True, text=True, timeout=60)
                    stopped.append(done)
                    return
            time.sleep(0.2)

    watcher = threading.Thread(target=stop_once_detached)
    watcher.start()
    status, tail = run_in_pty(args, [("RUNNING", ["q"]), ("The run is still going", ["d"])], timeout=120)
    watcher.join()
    assert status == 0, tail[-2000:]
    assert b"detached; the run goes on in this process" in tail and b"schedtui attach" in tail
    assert stopped and stopped[0].returncode == 0, stopped
    (run,) = runs.iterdir()
    log = read_log(run / "events.jsonl")
    (detach,) = [e for e in log.events if e["type"] == "detach"]
    assert detach["reason"] == "key" and detach["output"] == str(run / "output.log")
    assert log.events[-1]["type"] == "end" and log.events[-1]["status"] == "stopped"
    assert log.events[-1]["by"] == "ctl"  # who stopped it
