"""A full disk loses nothing: the run pauses at a step boundary with the unwritten events in memory, says what is
full on stderr, and goes on by itself once the disk takes writes again; the log then holds every step, once."""

import resource

import pytest
import subprocess
import sys
import time

from engine_helpers import TINY_MOONS, of_type
from schedtui.events import read_log

LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
from schedtui.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("epochs", [3000, 300])  # the disk fills while it trains; or just as it ends
def test_a_run_on_a_full_disk_pauses_keeps_its_events_and_goes_on_when_there_is_room(tmp_path, epochs):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-c", LIMITED, str(120_000), "moons", "--headless", "--epochs", str(epochs),
           *[a for s in TINY_MOONS for a in ("--set", s)], "--runs-dir", str(runs)]
    err = tmp_path / "stderr.txt"
    with open(err, "w") as e:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=e, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while "paused at step" not in err.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, err.read_text()
            time.sleep(0.2)
        said = err.read_text()
        assert "cannot write the log (File too large)" in said and "free space and " in said
        time.sleep(1.0)
        assert proc.poll() is None  # paused, not ended
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))  # room
        assert proc.wait(120) == 0, err.read_text()
    finally:
        proc.kill()
    assert "resumed at step" in err.read_text()
    (run,) = runs.iterdir()
    log = read_log(run / "events.jsonl")
    assert log.warnings == []  # no seq gap, no torn or repeated line
    assert [s["step"] for s in of_type(log, "step")] == list(range(1, epochs * 5 + 1))  # every step, once
    pause, resume = of_type(log, "pause")[0], of_type(log, "resume")[0]
    assert pause["disk"] and pause["step"] == resume["step"] and of_type(log, "end")[0]["status"] == "completed"
    assert len(of_type(log, "checkpoint")) == 1  # the final checkpoint, written once the log was


def test_a_run_that_cannot_start_its_log_leaves_nothing_behind(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    cmd = [sys.executable, "-c", LIMITED, str(1000), "moons", "--headless", "--epochs", "1",
           *[a for s in TINY_MOONS for a in ("--set", s)], "--runs-dir", str(runs)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2 and "cannot start a run there" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and list(runs.iterdir()) == []
