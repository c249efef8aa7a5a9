"""Strings from a log, a preset or user code never reach the terminal raw outside the full-screen UI: OSC 52
(clipboard), OSC 0 (window title), ESC[2J (clear screen) are shown as text, and Rich markup (`[link=...]`)
is shown literally, in replay's summary, diff, export, headless output, rerun notes and the CLI's error line."""

import io
import json

import pytest
from rich.console import Console

from engine_helpers import TINY_MOONS, make_engine, run_to_end
from schedtui.cli import main
from schedtui.events import EventLog
from schedtui.events.state import RunState
from schedtui.headless import drain, summary_table

LINK = "[link=file:///etc/passwd]click[/link]"
EVIL = f"x\x1b]52;c;ZXZpbA==\x07 \x1b]0;owned\x07 \x1b[2J {LINK} [bold red]y"
SHOWN = "\\x1b]52;c;ZXZpbA==\\x07"  # how the OSC 52 part reads once made visible


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # Rich tables wrap at the console width: keep each value on one line


def assert_safe(text: str, literal=True):
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    if literal:
        assert SHOWN in text and LINK in text


def evil_log(path, preset=EVIL, knob="lr"):
    head = {"run_id": "r", "preset": preset, "device": "cpu", "steps_per_epoch": 2, "knobs": {knob: "constant"},
            "config": {"name": preset, "epochs": 1, "seed": 0, "note": EVIL}}
    with EventLog(path, head) as log:
        for s in (1, 2):
            log.emit("step", s, epoch=0, loss=0.5, knobs={knob: 0.1}, samples_per_s=1.0)
        log.emit("warning", 2, message=EVIL)
        log.emit("edit", 2, knob=EVIL, op="set", value=0.2, old=0.1, new=0.2)
        log.emit("checkpoint", 2, path=EVIL, reason="user")
        log.emit("error", 2, message=EVIL, traceback_file=EVIL)
        log.emit("end", 2, status="crashed", reason=EVIL)
    return path


def test_replay_summary_shows_log_strings_as_text(tmp_path, capsys):
    assert main(["replay", str(evil_log(tmp_path / "events.jsonl"))]) == 0
    out, err = capsys.readouterr()
    assert_safe(out + err)
    assert out.count(SHOWN) >= 6  # the header's preset, warning, edit, checkpoint, error, end reason


def test_diff_shows_names_and_values_as_text(tmp_path, capsys):
    a = evil_log(tmp_path / "a.jsonl", knob="lr")
    b = evil_log(tmp_path / "b.jsonl", preset="plain", knob=EVIL)
    assert main(["diff", str(a), str(b)]) == 1
    out, err = capsys.readouterr()
    assert_safe(out + err)
    first = out.splitlines()[0]
    assert first.startswith("runs differ: first at step 1 (lr, x\\x1b]52") and LINK in first


def test_export_messages_show_paths_as_text(tmp_path, capsys):
    run_dir = tmp_path / EVIL.replace("/", "_")  # a run directory named after a preset
    run_dir.mkdir()
    log = evil_log(run_dir / "events.jsonl")
    with open(log, "a") as f:
        f.write('{"seq": 99, "ty')  # a torn last line: a warning naming the file
    out_csv = tmp_path / "o.csv"
    assert main(["export", str(run_dir), "--csv", str(out_csv), "--preset", str(tmp_path / "o.toml")]) == 0
    out, err = capsys.readouterr()
    assert_safe(out + err, literal=False)
    assert "torn last line" in err and "[link=file:___etc_passwd]click[_link]" in err and "\\x1b]0;owned\\x07" in err


def test_export_csv_to_a_terminal_shows_control_characters_and_to_a_pipe_keeps_the_data(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    log = evil_log(tmp_path / "events.jsonl", knob=EVIL)
    cmd = [sys.executable, "-m", "schedtui", "export", str(log), "--csv", "-"]
    piped = subprocess.run(cmd, capture_output=True, timeout=60)
    assert piped.returncode == 0 and EVIL.encode() in piped.stdout  # data for pandas, as logged
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.wait(60) == 0
    assert_safe(shown.decode())


def test_cli_error_line_shows_the_message_as_text(tmp_path, capsys):
    assert main(["run", "m:f", "--preset", str(tmp_path / f"{EVIL.replace('/', '_')}.toml")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("schedtui: --preset ") and err.count("\n") == 1
    assert_safe(err, literal=False)
    assert "\\x1b]0;owned\\x07" in err and "[link=file:___etc_passwd]" in err


def test_headless_run_named_with_escapes_and_markup(tmp_path, capsys):
    evil = "x\x1b]52;c;ZXZpbA==\x07 \x1b]0;owned\x07 \x1b[2J [link=file:passwd]click [bold red]y"  # no "/": a file name
    code = main(["moons", "--headless", "--epochs", "1", "--runs-dir", str(tmp_path / "runs"),
                 "--data-dir", str(tmp_path / "data"), "--set", f"name={json.dumps(evil)}",  # json's escapes are TOML's
                 *[f"--set={s}" for s in TINY_MOONS]])
    out, err = capsys.readouterr()
    assert_safe(out + err, literal=False)  # run (its name shown as text) or refused in one line (quoting it as text)
    assert code in (0, 2), err
    assert SHOWN in out + err and "passwd]click [bold red]y" in out + err  # the markup shown as text (a long name is cut)


def test_headless_lines_and_summary_escape_what_the_run_reports(tmp_path):
    import queue

    console = Console(file=io.StringIO(), width=400, color_system=None)
    events: queue.SimpleQueue = queue.SimpleQueue()
    state = RunState(preset=EVIL, epochs=1)
    for ev in ({"type": "warning", "step": 1, "message": EVIL},
               {"type": "error", "step": 1, "message": EVIL, "traceback_file": EVIL},
               {"type": "early_stop", "step": 1, "metric": EVIL, "evaluations_without_improvement": 3},
               {"type": "eval", "step": 1, "model": EVIL, "loss": 0.5, "acc": "high"},
               {"type": "epoch", "step": 1, "epoch": 0, "epochs": 1, "train_loss": EVIL, "val_loss": 0.5, "val_acc": 0.5},
               {"type": "end", "step": 1, "status": "crashed", "reason": EVIL}):
        events.put(ev)
    drain(None, events, state, None, console)  # no pause event: the engine is never asked anything
    state.error = EVIL
    console.print(summary_table(state, tmp_path / EVIL))
    text = console.file.getvalue()
    assert_safe(text)
    assert text.count(SHOWN) >= 8


def test_rerun_notes_show_log_strings_as_text(tmp_path, capsys):
    src = run_to_end(make_engine(tmp_path / "src", ["epochs=1"])).path
    lines = src.read_text().splitlines(keepends=True)
    head = json.loads(lines[0])
    head["versions"]["torch"] = EVIL  # a version from the log, quoted in the "values may differ" note
    src.write_text(json.dumps(head) + "\n" + "".join(lines[1:]))
    code = main(["rerun", str(src), "--headless", "--runs-dir", str(tmp_path / "re"), "--data-dir", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert_safe(out + err)
    assert "torch" in err and LINK in err
