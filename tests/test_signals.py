"""Real signals to real `schedtui` processes: SIGTERM and SIGINT (headless), and SIGTERM (the UI) end the
run as `interrupted` with a checkpoint and the `end` event, exit 128 + the signal, and `schedtui resume`
continues it. SIGHUP (headless) and a terminal that goes away (the UI under a pty whose master is closed)
detach: the run goes on headless, with a `detach` event, until something stops it."""

import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import tempfile
import time

import pytest
from test_cli_tty import run_in_pty

from schedtui.events import read_log

TINY = ["--set", "data.n_samples=200", "--set", "engine.flush_interval=0.05"]


def log_of(runs):
    found = list(runs.glob("*/events.jsonl")) if runs.exists() else []
    return found[0] if found else None


def wait_for_steps(runs, proc_alive, timeout=90.0):
    """Until the run's log has a step (the run is training), or fail."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        path = log_of(runs)
        if path is not None and b'"type":"step"' in path.read_bytes():
            return path
        assert proc_alive(), "the process ended before training"
        time.sleep(0.02)
    raise AssertionError("no steps in the log")


def assert_interrupted(path):
    log = read_log(path)
    end = log.events[-1]
    assert end["type"] == "end" and end["status"] == "interrupted", end
    ck = log.events[-2]
    assert ck["type"] == "checkpoint" and ck["reason"] == "interrupted" and ck["step"] == end["step"]
    assert (path.parent / "checkpoints" / "latest").read_text().strip() in ck["path"]
    return end["step"]


def test_sigterm_sigint_end_a_headless_run_as_interrupted_sighup_does_not_and_resume_finishes_it(tmp_path):
    procs = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # three runs at once: start-up is the slow part
        runs = tmp_path / sig.name
        out = open(tmp_path / f"{sig.name}.out", "wb")
        cmd = [sys.executable, "-m", "schedtui", "moons", "--headless", "--epochs", "2000", *TINY, "--runs-dir", str(runs)]
        procs[sig] = (subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, preexec_fn=hup_default),
                      runs, out)
    for sig, (proc, runs, _) in procs.items():
        wait_for_steps(runs, lambda proc=proc: proc.poll() is None)
        proc.send_signal(sig)
    hup, hup_runs, _ = procs[signal.SIGHUP]  # the terminal went away, not the run: it goes on, detached
    t0 = time.monotonic()
    while b'"type":"detach"' not in log_of(hup_runs).read_bytes():
        assert hup.poll() is None and time.monotonic() - t0 < 30, "no detach event"
        time.sleep(0.02)
    detach = next(e for e in read_log(log_of(hup_runs), strict=False).events if e["type"] == "detach")
    assert detach["reason"] == "hangup" and "output" not in detach  # stdout was a file, not the terminal: kept
    wait_for_steps_after(hup_runs, detach["step"], lambda: hup.poll() is None)
    hup.send_signal(signal.SIGTERM)
    for sig, (proc, runs, out) in procs.items():
        code = signal.SIGTERM if sig == signal.SIGHUP else sig
        assert proc.wait(60) == 128 + code, (tmp_path / f"{sig.name}.out").read_text()
        out.close()
        step = assert_interrupted(log_of(runs))
        assert 0 < step < 10000  # long enough to outlast three start-ups side by side
        text = (tmp_path / f"{sig.name}.out").read_text()
        assert f"{code.name}: stopping at the next step" in text and "interrupted" in text

    path = log_of(tmp_path / "SIGTERM")
    stopped = read_log(path).events[-1]["step"]
    done = subprocess.run([sys.executable, "-m", "schedtui", "resume", str(path.parent), "--headless"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    log = read_log(path)
    assert not log.warnings and log.events[-1]["status"] == "completed"
    i = next(i for i, e in enumerate(log.events) if e["type"] == "resume" and "checkpoint" in e)
    assert log.events[i]["step"] == stopped
    assert [e["step"] for e in log.events[i:] if e["type"] == "step"] == list(range(stopped + 1, 10001))


def test_the_ui_ends_the_run_as_interrupted_on_sigterm(tmp_path):
    runs = tmp_path / "runs"
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        hup_default()
        os.execv(sys.executable, [sys.executable, "-m", "schedtui", "moons", "--epochs", "20000", *TINY, "--runs-dir", str(runs)])
    try:
        seen = _watch_until_training(fd, pid, runs)
        os.kill(pid, signal.SIGTERM)
        status, seen = _wait(pid, fd, seen)
    finally:
        os.close(fd)
    assert status == 143, seen[-2000:]
    step = assert_interrupted(log_of(runs))
    assert b"run interrupted; log:" in seen

    # and `schedtui resume` continues it in the UI, until q, y
    status, tail = run_in_pty(["resume", str(log_of(runs).parent)], [("RUNNING", ["q"]), ("The run is still going", ["s"])])
    assert status == 0, tail[-2000:]
    log = read_log(log_of(runs))
    i = next(i for i, e in enumerate(log.events) if e["type"] == "resume" and "checkpoint" in e)
    assert log.events[i]["step"] == step and log.events[i + 1]["step"] == step + 1
    assert log.events[-1]["status"] == "stopped" and log.events[-2]["reason"] == "stopped"


@pytest.fixture
def control_dir(monkeypatch):
    d = tempfile.mkdtemp(prefix="st-", dir="/tmp")  # short: socket paths are limited to ~108 bytes
    monkeypatch.setenv("SCHEDTUI_CONTROL_DIR", d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_the_ui_run_goes_on_headless_when_its_terminal_goes_away(tmp_path, control_dir):
    """The pty's master closes, as when an SSH connection drops: the kernel sends SIGHUP. The screen closes,
    training goes on with its output in RUN_DIR/output.log and a `detach` event, and `ctl stop` ends it."""
    runs = tmp_path / "runs"
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        hup_default()
        os.execv(sys.executable, [sys.executable, "-m", "schedtui", "moons", "--epochs", "20000", *TINY, "--runs-dir", str(runs)])
    _watch_until_training(fd, pid, runs)
    os.close(fd)  # hang up
    alive = lambda: os.waitpid(pid, os.WNOHANG)[0] == 0  # noqa: E731
    detach = wait_for_detach(runs, alive)
    run_dir = log_of(runs).parent
    assert detach["reason"] == "hangup" and detach["output"] == str(run_dir / "output.log")
    wait_for_steps_after(runs, detach["step"], alive)  # the log grows: training goes on
    stop = subprocess.run([sys.executable, "-m", "schedtui", "ctl", str(run_dir), "stop"], capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0, stop.stderr
    _, code = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(code) == 0
    log = read_log(log_of(runs))
    assert log.events[-1]["status"] == "stopped" and log.events[-2]["type"] == "checkpoint"
    out = (run_dir / "output.log").read_text()
    assert "run stopped; log:" in out and "schedtui resume" in out  # what it said after the screen went



def hup_default() -> None:
    """In a child, before exec: SIGHUP as a terminal program gets it, even when the suite runs under nohup (which
    the run must keep honouring: an ignored SIGHUP stays ignored)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def wait_for_detach(runs, alive, timeout=30.0) -> dict:
    """The run's (first) `detach` event, once its log has one; fails if the process ends first or it never comes."""
    t0 = time.monotonic()
    while b'"type":"detach"' not in log_of(runs).read_bytes():
        assert alive(), "the run ended when its terminal went away"
        assert time.monotonic() - t0 < timeout, "no detach event"
        time.sleep(0.05)
    return next(e for e in read_log(log_of(runs), strict=False).events if e["type"] == "detach")


def wait_for_steps_after(runs, step, alive, timeout=60.0):
    t0 = time.monotonic()
    while not any(e["type"] == "step" and e["step"] > step + 20 for e in read_log(log_of(runs), strict=False).events):
        assert alive() and time.monotonic() - t0 < timeout, "no training after the detach"
        time.sleep(0.05)


def _watch_until_training(fd, pid, runs, timeout=90.0):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    seen, t0 = b"", time.monotonic()
    while time.monotonic() - t0 < timeout:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            seen += os.read(fd, 65536)
        path = log_of(runs)
        if b"RUNNING" in seen and path is not None and b'"type":"step"' in path.read_bytes():
            return seen
        assert os.waitpid(pid, os.WNOHANG)[0] == 0, seen[-2000:]
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the UI did not start training")


def _wait(pid, fd, seen, timeout=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                pass
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(code), seen
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None, seen
