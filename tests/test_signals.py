"""Real signals to real `schedtui` processes: SIGTERM, SIGINT and SIGHUP (headless), SIGTERM and a
terminal that goes away (the UI under a pty whose master is closed) all end the run as `interrupted`
with a checkpoint and the `end` event, exit 128 + the signal, and `schedtui resume` continues it."""

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

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


def test_sigterm_sigint_sighup_end_a_headless_run_as_interrupted_and_resume_finishes_it(tmp_path):
    procs = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # three runs at once: start-up is the slow part
        runs = tmp_path / sig.name
        out = open(tmp_path / f"{sig.name}.out", "wb")
        cmd = [sys.executable, "-m", "schedtui", "moons", "--headless", "--epochs", "2000", *TINY, "--runs-dir", str(runs)]
        procs[sig] = (subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path), runs, out)
    for sig, (proc, runs, _) in procs.items():
        wait_for_steps(runs, lambda proc=proc: proc.poll() is None)
        proc.send_signal(sig)
    for sig, (proc, runs, out) in procs.items():
        assert proc.wait(60) == 128 + sig, (tmp_path / f"{sig.name}.out").read_text()
        out.close()
        step = assert_interrupted(log_of(runs))
        assert 0 < step < 10000  # long enough to outlast three start-ups side by side
        text = (tmp_path / f"{sig.name}.out").read_text()
        assert f"{sig.name}: stopping at the next step" in text and "interrupted" in text

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
    status, tail = run_in_pty(["resume", str(log_of(runs).parent)], [("RUNNING", ["q"]), ("Stop it and quit?", ["y"])])
    assert status == 0, tail[-2000:]
    log = read_log(log_of(runs))
    i = next(i for i, e in enumerate(log.events) if e["type"] == "resume" and "checkpoint" in e)
    assert log.events[i]["step"] == step and log.events[i + 1]["step"] == step + 1
    assert log.events[-1]["status"] == "stopped" and log.events[-2]["reason"] == "stopped"


def test_the_ui_survives_its_terminal_going_away(tmp_path):
    """The pty's master closes, as when an SSH connection drops: the kernel sends SIGHUP."""
    runs = tmp_path / "runs"
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "schedtui", "moons", "--epochs", "20000", *TINY, "--runs-dir", str(runs)])
    _watch_until_training(fd, pid, runs)
    os.close(fd)  # hang up
    t0 = time.monotonic()
    while True:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - t0 > 60:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("the UI did not exit after its terminal went away")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(code) == 128 + signal.SIGHUP
    step = assert_interrupted(log_of(runs))
    assert (log_of(runs).parent / "checkpoints" / f"step-{step:08d}.pt").is_file()


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
