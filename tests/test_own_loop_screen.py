"""Your own loop keeps its main thread: `with schedtui.monitor(...)` (and `mon.run`) on a terminal opens the live
screen in a child process attached to the run; what the loop prints goes to RUN_DIR/output.log, each line with its
step, and the screen's output pane (o) shows it. Detached, the loop goes on and says so; ctrl+q stops it."""

import re

from engine_helpers import of_type
from schedtui.events import read_log
from test_cli_tty import run_in_pty, stop_once_trained_after_detach

SCRIPT = """
import torch
from torch import nn
import schedtui

torch.manual_seed(0)
model = nn.Linear(2, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
with schedtui.monitor(model, opt, epochs=60, steps_per_epoch=50, runs_dir={runs!r}) as mon:
    for epoch in range(60):
        for i in range(50):
            loss = model(torch.randn(8, 2)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.step(loss)
        print(f"my loop says: epoch {{epoch}} done", flush=True)
        mon.epoch()
print("after the loop")
"""


def test_with_monitor_on_a_terminal_shows_the_screen_and_keeps_the_loops_output(tmp_path):
    runs = tmp_path / "runs"
    script = tmp_path / "loop.py"
    script.write_text(SCRIPT.format(runs=str(runs)))
    # (a fast machine ends the run before the screen is up); o shows the loop's output, in the screen
    status, tail = run_in_pty([], [("DONE", ["o"]), ("my loop says: epoch 59 done", ["q"])], timeout=120,
                              python_args=[str(script)])
    assert status == 0, tail[-2000:]
    assert b"after the loop" in tail
    (run,) = runs.iterdir()
    log = read_log(run / "events.jsonl")
    assert len(of_type(log, "step")) == 3000 and of_type(log, "end")[0]["status"] == "completed"
    lines = (run / "output.log").read_text().splitlines()
    said = [ln for ln in lines if "my loop says" in ln]
    assert len(said) == 60 and re.fullmatch(r"\[step 50\] my loop says: epoch 0 done", said[0])


def _long_loop(tmp_path, monkeypatch):
    """`python -c` running examples/own_loop.py's loop for 20000 epochs (stopped long before)."""
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the child imports examples/ from here
    return ["-c", f"from examples.own_loop import main; print('status', main(epochs=20000, runs_dir={str(tmp_path / 'runs')!r}))"]


def test_your_loop_goes_on_when_its_screen_is_detached_and_says_where(tmp_path, monkeypatch):
    """q then d: the screen closes, the loop goes on in its process (a `detach` event, a line on the terminal),
    until `schedtui ctl stop` from another shell; then the script goes on after the loop."""
    import threading
    import time

    runs, stopped = tmp_path / "runs", []

    def stop_after_the_detach() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not stop_once_trained_after_detach(runs, stopped):
            time.sleep(0.2)

    watcher = threading.Thread(target=stop_after_the_detach)
    watcher.start()
    status, tail = run_in_pty([], [("RUNNING", ["q"]), ("The run is still going", ["d"])], timeout=120,
                              python_args=_long_loop(tmp_path, monkeypatch))
    watcher.join()
    assert stopped and stopped[0].returncode == 0, (stopped, tail[-2000:])
    assert status == 0 and b"status stopped" in tail, tail[-2000:]
    assert b"detached; your loop goes on in this process" in tail and b"schedtui attach" in tail
    (run,) = runs.iterdir()
    log = read_log(run / "events.jsonl")
    (detach,) = of_type(log, "detach")
    assert detach["reason"] == "key" and detach["output"] == str(run / "output.log")
    end = of_type(log, "end")[0]
    assert end["status"] == "stopped" and end["by"] == "ctl"
    assert [s for s in of_type(log, "step") if s["step"] > detach["step"]]  # it trained after the detach


def test_ctrl_q_on_your_loops_screen_stops_the_run(tmp_path, monkeypatch):
    status, tail = run_in_pty([], [("RUNNING", ["\x11"])], timeout=120, python_args=_long_loop(tmp_path, monkeypatch))
    assert status == 0 and b"status stopped" in tail, tail[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    log = read_log(run / "events.jsonl")
    end = of_type(log, "end")[0]
    assert end["status"] == "stopped" and end["by"] == "ui" and not of_type(log, "detach")


def test_your_loop_outlives_its_terminal(tmp_path, monkeypatch):
    """The pty's master closes, as when an SSH connection drops (SIGHUP): the loop goes on, a `detach` event says
    "hangup", `ctl stop` ends it, and what it printed after (the dead terminal's output) is in output.log."""
    import os
    import pty
    import subprocess
    import sys
    import time

    from test_signals import _watch_until_training, hup_default, log_of, wait_for_detach, wait_for_steps_after

    runs, args = tmp_path / "runs", _long_loop(tmp_path, monkeypatch)
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        hup_default()
        os.execv(sys.executable, [sys.executable, *args])
    _watch_until_training(fd, pid, runs)
    os.close(fd)  # hang up
    alive = lambda: os.waitpid(pid, os.WNOHANG)[0] == 0  # noqa: E731
    detach = wait_for_detach(runs, alive)
    run_dir = log_of(runs).parent
    assert detach["reason"] == "hangup" and detach["output"] == str(run_dir / "output.log")
    wait_for_steps_after(runs, detach["step"], alive)
    stop = subprocess.run([sys.executable, "-m", "schedtui", "ctl", str(run_dir), "stop"], capture_output=True,
                          text=True, timeout=60)
    assert stop.returncode == 0, stop.stderr
    t0, status = time.monotonic(), None
    while status is None:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(code)
        elif time.monotonic() - t0 > 60:
            os.kill(pid, 9)
            raise AssertionError("your script did not finish after the run stopped")
        time.sleep(0.1)
    assert status == 0
    log = read_log(log_of(runs))
    assert of_type(log, "end")[0]["status"] == "stopped" and len(of_type(log, "detach")) == 1
    out = (run_dir / "output.log").read_text()
    assert "schedtui: run stopped; log" in out and "status stopped" in out  # said after the terminal went
