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
    assert log.events[-1]["by"] == "ui"  # the screen is another process, but the run's own: its keys are the UI's
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


PRINTING = '''
import os
import torch
from torch import nn
import schedtui

print("loading my data [bold]not markup[/bold]")  # while the run is being built: before it has a directory


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.calls = nn.Linear(4, 2), 0

    def forward(self, x):
        self.calls += 1
        if self.calls % 50 == 0:
            print(f"forward call {self.calls}")
        if self.calls == 120:
            os.write(2, b"C code on fd 2\\n")
        return self.lin(x)


def experiment():
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    return schedtui.Experiment(model=Net(), train=torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()))
'''


def test_what_the_training_prints_under_the_screen_goes_to_output_log_with_its_step_and_o_shows_it(tmp_path, monkeypatch):
    """The screen is another process: this one's prints, and what is written to its descriptors, must neither
    reach the terminal under the screen nor be lost."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "printing_mod.py").write_text(PRINTING)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mods"))
    runs = tmp_path / "runs"
    args = ["run", "printing_mod:experiment", "--epochs", "20000", "--set", 'device="cpu"', "--runs-dir", str(runs)]
    status, tail = run_in_pty(args, [("RUNNING", ["o"]), ("forward call", ["q"]), ("The run is still going", ["s"])])
    assert status == 0, tail[-2000:]
    assert b"run stopped; log:" in tail
    (run,) = runs.iterdir()
    lines = (run / "output.log").read_text().splitlines()
    assert lines[0] == "[step 0] loading my data [bold]not markup[/bold]"  # held until the run had a directory
    said = [ln for ln in lines if "forward call" in ln]
    steps = [int(ln.split("]")[0][len("[step "):]) for ln in said]
    assert len(said) >= 2 and steps == sorted(steps) and steps[-1] > steps[0]  # each with the step of its moment
    assert any(ln.endswith("] C code on fd 2") for ln in lines)
    assert read_log(run / "events.jsonl").events[-1]["status"] == "stopped"


def test_q_while_the_run_starts_closes_the_screen_and_stops_the_run_once_built(tmp_path):
    runs = tmp_path / "runs"
    args = ["moons", "--epochs", "20000", "--set", "data.n_samples=200", "--runs-dir", str(runs)]
    status, tail = run_in_pty(args, [("STARTING", ["q"])])
    assert status == 0, tail[-2000:]
    assert b"run stopped; log:" in tail
    (run,) = runs.iterdir()
    end = read_log(run / "events.jsonl").events[-1]
    assert end["type"] == "end" and end["status"] == "stopped"


def test_a_run_that_cannot_start_closes_the_screen_and_says_why_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "failing_mod.py").write_text("import time\ndef f():\n    time.sleep(1)\n    raise RuntimeError('no data here')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mods"))
    runs = tmp_path / "runs"
    status, seen = run_in_pty(["run", "failing_mod:f", "--runs-dir", str(runs)], [])
    assert status == 2, seen[-2000:]
    text = seen.decode("utf-8", "replace")
    assert "STARTING" in text  # the screen was up while the run was being built
    after = text[text.rindex("STARTING"):]
    assert "schedtui: experiment 'failing_mod:f': the factory raised RuntimeError: no data here" in after  # once it closed
    assert not runs.exists() or not list(runs.iterdir())


def children(pid: int) -> list[int]:
    out = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(stat))
    return out


def stop_once_trained_after_detach(runs, stopped: list) -> bool:
    """If the run under `runs` has a `detach` event and 20 steps after it: `schedtui ctl stop` it (the finished
    process appended to `stopped`) and True."""
    logs = list(runs.glob("*/events.jsonl"))
    events = read_log(logs[0], strict=False).events if logs else []
    detach = [e for e in events if e["type"] == "detach"]
    if not (detach and sum(e["type"] == "step" and e["step"] > detach[0]["step"] + 20 for e in events)):
        return False
    stopped.append(subprocess.run([sys.executable, "-m", "schedtui", "ctl", str(logs[0].parent), "stop"],
                                  capture_output=True, text=True, timeout=60))
    return True


def test_a_screen_that_dies_does_not_take_the_run_with_it(tmp_path):
    """The screen is a child process: killed, the run goes on headless in its process (a `detach` event with
    reason "screen", its output in output.log) until something stops it."""
    runs = tmp_path / "runs"
    args = ["moons", "--epochs", "20000", "--set", "data.n_samples=200", "--runs-dir", str(runs)]
    killed, stopped = [], []

    def kill_the_screen_then_stop() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            logs = list(runs.glob("*/events.jsonl"))
            if logs and b'"type":"step"' in logs[0].read_bytes() and not killed:
                cli = [p for p in children(os.getpid()) if b"schedtui" in open(f"/proc/{p}/cmdline", "rb").read()]
                screens = [c for p in cli for c in children(p)]
                if screens:
                    os.kill(screens[0], 9)
                    killed.append(screens[0])
            if killed and stop_once_trained_after_detach(runs, stopped):
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=kill_the_screen_then_stop)
    watcher.start()
    status, tail = run_in_pty(args, [], timeout=120)
    watcher.join()
    assert killed and stopped and stopped[0].returncode == 0, (killed, stopped, tail[-2000:])
    assert status == 0, tail[-2000:]
    assert b"the screen closed by itself" in tail and b"schedtui attach" in tail
    (run,) = runs.iterdir()
    log = read_log(run / "events.jsonl")
    (detach,) = [e for e in log.events if e["type"] == "detach"]
    assert detach["reason"] == "screen" and detach["output"] == str(run / "output.log")
    assert log.events[-1]["type"] == "end" and log.events[-1]["status"] == "stopped"
