"""`--detach`, `schedtui ctl`, `attach` and `ps` against real runs in other processes.

Two runs are started in the background once (start-up is the slow part): one is
steered (ctl set, status, bad input, attach in a pseudo-terminal, ctl stop), the
other is killed with SIGKILL to see what ctl and ps say about a run that died.
The tests of this module run in order: the last one stops the steered run.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_cli_tty import run_in_pty

from schedtui.events import read_log

TINY = ["--epochs", "20000", "--set", "data.n_samples=200", "--set", "engine.flush_interval=0.1"]


def schedtui(*args, cwd, timeout=60):
    return subprocess.run([sys.executable, "-m", "schedtui", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)


def wait_for(pred, timeout=30.0, what="condition"):
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


def log_events(run_dir: Path) -> list[dict]:
    return read_log(run_dir / "events.jsonl", strict=False).events


def steps_logged(run_dir: Path) -> int:
    return (run_dir / "events.jsonl").read_bytes().count(b'"type":"step"')


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(cwd, steered run dir, victim run dir, what --detach printed), both runs going in the background."""
    control = tempfile.mkdtemp(prefix="st-", dir="/tmp")
    old = os.environ.get("SCHEDTUI_CONTROL_DIR")
    os.environ["SCHEDTUI_CONTROL_DIR"] = control  # for these processes and the ones the tests start
    cwd = tmp_path_factory.mktemp("ctl")
    parents = {name: subprocess.Popen([sys.executable, "-m", "schedtui", "moons", "--detach", *TINY, "--runs-dir", name],
                                      cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for name in ("steered", "victim")}
    said = {name: p.communicate(timeout=120)[0] for name, p in parents.items()}
    dirs = {}
    try:
        for name, p in parents.items():
            assert p.returncode == 0, said[name]
            (dirs[name],) = (cwd / name).iterdir()
        yield cwd, dirs["steered"], dirs["victim"], said["steered"]
    finally:
        for d in dirs.values():  # whatever a failed test left going
            rec = d / "control.json"
            if rec.exists():
                try:
                    os.kill(json.loads(rec.read_text())["pid"], signal.SIGKILL)
                except (OSError, ValueError, KeyError):
                    pass
        shutil.rmtree(control, ignore_errors=True)
        if old is None:
            os.environ.pop("SCHEDTUI_CONTROL_DIR", None)
        else:
            os.environ["SCHEDTUI_CONTROL_DIR"] = old


def test_detach_starts_the_run_in_the_background_and_says_how_to_attach(runs):
    cwd, run, _, said = runs
    rel = run.relative_to(cwd)
    assert f"schedtui attach {rel}" in said and f"schedtui ctl {rel}" in said
    rec = json.loads((run / "control.json").read_text())
    os.kill(rec["pid"], 0)  # alive, though the command that started it has returned
    wait_for(lambda: steps_logged(run) > 0, what="training")
    assert "schedtui moons on cpu" in (run / "output.log").read_text()


def test_ctl_set_applies_at_a_step_and_is_logged_by_ctl(runs):
    cwd, run, _, _ = runs
    done = schedtui("ctl", run, "set", "dropout", "0.3", cwd=cwd)
    assert done.returncode == 0, done.stderr
    ev = json.loads(done.stdout)
    assert ev["type"] == "edit" and ev["knob"] == "dropout" and ev["new"] == 0.3 and ev["by"] == "ctl"
    wait_for(lambda: steps_logged(run) and any(e["type"] == "step" and e["step"] > ev["step"] for e in log_events(run)),
             what="a step after the edit")
    events = log_events(run)
    assert [e for e in events if e["type"] == "edit"] == [ev]
    after = [e for e in events if e["type"] == "step" and e["step"] > ev["step"]]
    assert after[0]["step"] == ev["step"] + 1 and after[0]["knobs"]["dropout"] == 0.3  # from the next update on
    before = [e for e in events if e["type"] == "step" and e["step"] == ev["step"]]
    assert before[0]["knobs"]["dropout"] != 0.3


def test_ctl_status_is_json_with_state_knobs_metrics_and_pid(runs):
    cwd, run, _, _ = runs
    done = schedtui("ctl", run.name, "status", "--runs-dir", run.parent, cwd=cwd)  # by name under --runs-dir
    assert done.returncode == 0, done.stderr
    st = json.loads(done.stdout)
    assert st["state"] == "running" and st["step"] > 0 and st["total_steps"] == 20000 * 5
    assert st["knobs"]["dropout"] == 0.3 and set(st["knobs"]) >= {"lr", "weight_decay", "momentum"}
    assert st["pid"] == json.loads((run / "control.json").read_text())["pid"]
    assert st["metrics"]["val_acc"] is not None and "loss" in st["metrics"] and st["screens"] == 0


@pytest.mark.parametrize("args, code, says", [
    (["set", "dropout", "1.5"], 1, "above the allowed range"),
    (["set", "nosuchknob", "1"], 1, "no knob named 'nosuchknob'"),
    (["schedule", "lr", "nosuchkind end=1"], 1, "nosuchkind"),
    (["set", "dropout", "abc"], 2, "'abc' is not a number"),
    (["frob"], 2, "unknown command 'frob'"),
    (["swa", "sideways"], 2, "ctl swa takes one of"),
    (["scale", "lr"], 2, "ctl scale takes KNOB FACTOR"),
])
def test_bad_input_is_one_line_and_changes_nothing(runs, args, code, says):
    cwd, run, _, _ = runs
    edits = sum(1 for e in log_events(run) if e["type"] == "edit")
    done = schedtui("ctl", run, *args, cwd=cwd)
    assert done.returncode == code and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("schedtui: ") and says in done.stderr, done.stderr
    assert sum(1 for e in log_events(run) if e["type"] == "edit") == edits


def test_an_unknown_run_is_one_line_exit_2(runs):
    cwd, _, _, _ = runs
    for target in ("no-such-run", cwd / "steered"):  # no such run; a directory that is not a run
        done = schedtui("ctl", target, "pause", cwd=cwd)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "run" in done.stderr, done.stderr
    done = schedtui("attach", "no-such-run", cwd=cwd)
    assert done.returncode == 2 and "no such run" in done.stderr


def test_attach_shows_the_run_with_the_edit_and_q_detaches(runs):
    cwd, run, _, _ = runs
    status, tail = run_in_pty(["attach", "--runs-dir", str(run.parent)], [("\u21920.3 set", ["q"]), ("The run is still going", ["d"])])  # the newest
    assert status == 0, tail[-2000:]
    assert b"detached; the run goes on" in tail
    st = json.loads(schedtui("ctl", run, "status", cwd=cwd).stdout)
    assert st["state"] == "running" and st["screens"] == 0
    n = steps_logged(run)
    wait_for(lambda: steps_logged(run) > n, what="training after the screen detached")


def test_ps_lists_the_runs_newest_first_running_or_not(runs):
    cwd, run, victim, _ = runs
    done = schedtui("ps", "steered", cwd=cwd)
    assert done.returncode == 0, done.stderr
    header, line = done.stdout.splitlines()
    assert header.split() == ["RUN", "PID", "STATUS", "STEP", "SCREENS", "COMMAND"]
    pid = json.loads((run / "control.json").read_text())["pid"]
    assert line.split()[:3] == [str(run.relative_to(cwd)), str(pid), "running"]
    assert line.endswith(f"schedtui attach {run.relative_to(cwd)}") and "/100000" in line
    assert schedtui("ps", "nowhere", cwd=cwd).returncode == 2


def test_after_kill_9_ctl_says_no_running_run_ps_says_killed_and_the_socket_is_gone(runs):
    cwd, _, victim, _ = runs
    rec = json.loads((victim / "control.json").read_text())
    sock = Path(rec["socket"])
    assert sock.exists()
    os.kill(rec["pid"], signal.SIGKILL)

    def dead() -> bool:
        try:
            os.kill(rec["pid"], 0)
        except ProcessLookupError:
            return True
        proc = Path(f"/proc/{rec['pid']}")  # a zombie until reaped, once its last thread is gone (with its files)
        return (proc / "status").read_text().find("State:\tZ") >= 0 and len(list((proc / "task").iterdir())) <= 1

    wait_for(dead, what="the process to die")
    assert sock.exists()  # what a SIGKILL leaves behind
    done = schedtui("ctl", victim, "status", cwd=cwd)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "no running run" in done.stderr and "killed" in done.stderr
    assert not sock.exists() and not (victim / "control.json").exists()  # cleaned up
    line = schedtui("ps", "victim", cwd=cwd).stdout.splitlines()[1]
    assert line.split()[1:3] == ["-", "killed"] and f"schedtui replay {victim.relative_to(cwd)}" in line


def test_ctl_stop_ends_the_run_stopped_with_a_checkpoint(runs):
    cwd, run, _, _ = runs
    sock = Path(json.loads((run / "control.json").read_text())["socket"])
    done = schedtui("ctl", run, "stop", cwd=cwd)
    assert done.returncode == 0, done.stderr
    ck, end = map(json.loads, done.stdout.splitlines())
    assert ck["type"] == "checkpoint" and ck["reason"] == "stopped" and end["type"] == "end" and end["status"] == "stopped"
    events = log_events(run)
    assert events[-1] == end and events[-2] == ck and (cwd / ck["path"]).is_file()
    stop_by = [e for e in events if e.get("by") == "ctl"]
    assert [e["type"] for e in stop_by] == ["edit", "end"]  # stop makes no event of its own; the end says who
    wait_for(lambda: not sock.exists() and not (run / "control.json").exists(), 10, "the socket removed")
    done = schedtui("ctl", run, "pause", cwd=cwd)
    assert done.returncode == 2 and f"no running run (it ended stopped at step {end['step']})" in done.stderr


def test_ctl_ps_attach_and_the_server_do_not_import_torch():
    code = ("import sys\nimport schedtui.commands.ctl, schedtui.commands.ps, schedtui.commands.attach, schedtui.ui.remote\n"
            "import schedtui.control.server, schedtui.control.background\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert 'textual' not in sys.modules and 'rich' not in sys.modules, 'a screen library was imported'\n")
    done = subprocess.run([sys.executable, "-c", code.replace("schedtui.ui.remote", "schedtui.control.runs")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-c", "import sys, schedtui.ui.remote\nassert 'torch' not in sys.modules"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
