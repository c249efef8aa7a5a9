"""A damaged log is a one-line error (exit 2) or a skipped line with a warning, never a traceback: a line of
200,000 nested `[`, one changed byte in a step line, a header whose config is not a table, a damaged line in
the middle of a log (replay, diff, export, rerun, resume), and `schedtui replay RUN | head`."""

import json
import subprocess
import sys
import time

import pytest

from engine_helpers import make_engine, of_type
from schedtui.cli import main
from schedtui.events import EventLog, read_log
from schedtui.events.timeline import Timeline

DEEP = b"[" * 200_000 + b"\n"
SPE = 10


def write_log(path, steps=60, header=None):
    head = {"run_id": "r1", "preset": "toy", "device": "cpu", "steps_per_epoch": SPE, "knobs": {"lr": "constant"},
            "config": {"name": "toy", "epochs": steps // SPE, "seed": 0}, **(header or {})}
    with EventLog(path, head) as log:
        for s in range(1, steps + 1):
            log.emit("step", s, epoch=(s - 1) // SPE, loss=1.0 / s, knobs={"lr": 0.1, "dropout": 0.2}, samples_per_s=10.0)
            if s % SPE == 0:
                log.emit("eval", s, split="val", model="raw", loss=0.5, acc=0.9, reason="epoch")
        log.emit("end", steps, status="completed", epochs_completed=steps // SPE)
    return path


def lines_of(path):
    return path.read_bytes().splitlines(keepends=True)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def one_line_error(code, err):
    assert code == 2 and err.startswith("schedtui: ") and err.count("\n") == 1, err


COMMANDS = {
    "replay": lambda log, tmp: ["replay", log],
    "diff": lambda log, tmp: ["diff", log, log],
    "export": lambda log, tmp: ["export", log, "--csv", tmp / "o.csv"],
    "rerun": lambda log, tmp: ["rerun", log, "--headless", "--runs-dir", tmp / "re"],
    "resume": lambda log, tmp: ["resume", log.parent, "--headless"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_header_of_200000_nested_brackets_is_one_line_in_every_command(tmp_path, capsys, command):
    log = tmp_path / "run" / "events.jsonl"
    log.parent.mkdir()
    log.write_bytes(DEEP)
    code, out, err = run(capsys, *COMMANDS[command](log, tmp_path))
    one_line_error(code, err)
    assert "nested too deeply" in err and not (tmp_path / "re").exists() and not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("junk", [DEEP, b'{"seq": 31, "type": "step", "step": 31, "knobs": ' + b"[" * 500 + b"]" * 500 + b"}\n"],
                         ids=["200000-brackets", "500-deep-but-json"])
def test_a_deep_line_in_the_middle_is_skipped_by_replay_diff_and_export(tmp_path, capsys, junk):
    good = write_log(tmp_path / "good.jsonl")
    bad = tmp_path / "bad.jsonl"
    lines = lines_of(good)
    bad.write_bytes(b"".join(lines[:30] + [junk] + lines[30:]))
    code, out, err = run(capsys, "replay", bad)
    assert code == 0 and out.startswith("run r1 (toy) on cpu: completed at step 60 of 60")
    assert "skipped: line 31: skipped, not a valid event (nested too deeply)" in out
    code, out, err = run(capsys, "diff", good, bad)
    assert code == 0 and out.startswith("runs match: 60 steps")
    assert "schedtui diff: warning: B" in err and "line 31: skipped, not a valid event (nested too deeply)" in err
    code, out, err = run(capsys, "export", bad, "--csv", tmp_path / "o.csv")
    assert code == 0 and "66 rows (60 steps, 6 evals)" in out and "line 31: skipped" in err


def test_a_damaged_line_in_the_middle_is_skipped_by_diff_and_export(tmp_path, capsys):
    good = write_log(tmp_path / "good.jsonl")
    bad = tmp_path / "bad.jsonl"
    lines = lines_of(good)
    lines[20] = b"\x00garbage{\n"
    bad.write_bytes(b"".join(lines))
    code, out, err = run(capsys, "diff", good, bad)
    assert code == 1 and out.splitlines()[0].startswith("runs differ: first at step") and "(only in A)" in out
    assert "line 21: skipped, not a valid event" in err
    code, out, err = run(capsys, "export", bad, "--csv", tmp_path / "o.csv", "--preset", tmp_path / "o.toml")
    assert code == 0 and (tmp_path / "o.csv").exists() and (tmp_path / "o.toml").exists()
    assert err.startswith(f"schedtui export: warning: {bad}: line 21: skipped, not a valid event (binary data)")


def test_one_changed_byte_in_a_step_line_is_not_a_traceback(tmp_path, capsys):
    path = write_log(tmp_path / "events.jsonl", steps=300)
    data = bytearray(path.read_bytes())
    at = data.index(b'"knobs":{"lr"', data.index(b'"step":1,'))  # the first step line: the bucket's knobs come from it
    data[at + 9] = ord("#")  # "knobs":{#lr": not JSON, though the bulk path's pattern still matches it
    path.write_bytes(bytes(data))
    tl = Timeline(path)
    tl.load()
    assert tl.last_step == 300 and tl.warnings[0] == "line 2: skipped, not a valid event (not JSON)"
    assert tl.buckets(300)[0][2] == {"lr": 0.1, "dropout": 0.2}  # step 2's knobs stand for the bucket
    code, out, err = run(capsys, "replay", path)
    assert code == 0 and "completed at step 300 of 300" in out and "skipped: line 2" in out


@pytest.mark.parametrize("config", [[1, 2], {"name": "toy", "epochs": "many"}, "x"], ids=["list", "epochs-many", "string"])
def test_a_header_whose_config_is_not_a_table_is_no_traceback(tmp_path, capsys, config):
    path = write_log(tmp_path / "events.jsonl")
    lines = lines_of(path)
    head = json.loads(lines[0])
    head["config"] = config
    path.write_bytes(json.dumps(head).encode() + b"\n" + b"".join(lines[1:]))
    code, out, err = run(capsys, "replay", path)
    assert code == 0 and "at step 60 of ?" in out and "skipped: header:" in out
    code, out, err = run(capsys, "diff", path, write_log(tmp_path / "good.jsonl"))
    assert code == 0 and "config" in out  # the config differs: context, not the verdict
    code, out, err = run(capsys, "export", path, "--csv", tmp_path / "o.csv")
    assert code == 0
    code, out, err = run(capsys, "export", path, "--preset", tmp_path / "o.toml")
    if isinstance(config, dict):
        assert code == 0 and 'epochs = "many"' in (tmp_path / "o.toml").read_text()
    else:
        one_line_error(code, err)
        assert "has no config" in err


def test_replay_into_head_ends_quietly(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path, {"run_id": "r", "preset": "toy", "config": {"epochs": 1}, "steps_per_epoch": 5000}) as log:
        for s in range(1, 5001):  # a summary much longer than a pipe holds
            log.emit("warning", s, message=f"warning number {s} " + "x" * 40)
    shell = f"{sys.executable} -m schedtui replay {path} 2>{tmp_path / 'err'} | head -5; echo \"rc=${{PIPESTATUS[0]}}\""
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
    out = done.stdout.splitlines()
    assert len(out) == 6 and out[0].startswith("run r (toy)") and out[-1] == "rc=141"
    assert (tmp_path / "err").read_text() == ""


# ---- rerun and resume: a damaged line in the middle is skipped with a warning ------------------------------

def stopped_run(tmp_path):
    """A real tiny run stopped (with its checkpoint) after a few epochs."""
    engine = make_engine(tmp_path / "src", ["epochs=40", "engine.checkpoint_every=1"])
    engine.start()
    t0 = time.monotonic()
    while engine.step < 12:
        assert time.monotonic() - t0 < 60
        time.sleep(0.002)
    engine.send("stop").result(30)
    assert engine.join(30)
    return engine.run_dir


def damage(path):
    """A line of 200,000 `[` put in after the third step event."""
    lines = lines_of(path)
    at = [i for i, line in enumerate(lines) if b'"type":"step"' in line][2] + 1
    path.write_bytes(b"".join(lines[:at] + [DEEP] + lines[at:]))
    return at + 1  # its line number


def test_rerun_and_resume_skip_a_damaged_line_with_a_warning(tmp_path, capsys):
    run_dir = stopped_run(tmp_path)
    log = run_dir / "events.jsonl"
    lineno = damage(log)
    warning = f"line {lineno}: skipped, not a valid event (nested too deeply)"
    code, out, err = run(capsys, "rerun", log, "--headless", "--runs-dir", tmp_path / "re", "--data-dir", tmp_path / "data")
    assert code == 0 and f"schedtui rerun: warning: {log}: {warning}" in err
    (re_dir,) = (tmp_path / "re").iterdir()
    assert [e["loss"] for e in of_type(read_log(re_dir), "step")] == [e["loss"] for e in of_type(read_log(log, strict=False), "step")]
    code, out, err = run(capsys, "resume", run_dir, "--headless")
    assert code == 0 and f"schedtui resume: warning: {log}: {warning}" in err
    assert read_log(log, strict=False).events[-1]["status"] == "completed"
