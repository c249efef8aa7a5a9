"""`schedtui diff`: the verdict line, where two runs first part, exit codes, and bad logs refused in one line."""

import json

import pytest

from engine_helpers import make_engine, run_to_end
from schedtui.cli import main
from schedtui.events import FORMAT, EventLog, reader
from schedtui.events.compare import compare, same

KNOBS = {"lr": "constant", "dropout": "constant"}


def synth(path, n=10, loss=lambda s: 1.0 / s, knobs=lambda s: {"lr": 0.1, "dropout": 0.2}, skip=(),
          end="completed", acc=0.9, header=None):
    """A run's log written through EventLog: n steps, an eval, an end event."""
    head = {"run_id": path.stem, "preset": "toy", "device": "cpu", "steps_per_epoch": 5, "knobs": KNOBS,
            "config": {"name": "toy", "seed": 0, "epochs": 2, "optimizer": {"lr": 0.1}}, **(header or {})}
    with EventLog(path, head) as log:
        for s in range(1, n + 1):
            if s not in skip:
                log.emit("step", s, epoch=(s - 1) // 5, loss=loss(s), knobs=knobs(s), samples_per_s=100.0)
        log.emit("eval", n, split="val", model="raw", loss=0.5, acc=acc, reason="epoch")
        if end:
            log.emit("end", n, status=end, epochs_completed=2, elapsed_s=1.0, best_val_acc=acc, best_val_loss=0.5, best_step=n)
    return path


def diff(capsys, *args):
    code = main(["diff", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_identical_runs_match(tmp_path, capsys):
    a, b = synth(tmp_path / "a.jsonl"), synth(tmp_path / "b.jsonl")
    code, out, err = diff(capsys, a, b)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == "runs match: 10 steps, every loss and knob value identical"
    assert "final metrics" in out and "completed" in out


def test_knob_differing_at_step_7_in_the_last_digit(tmp_path, capsys):
    a = synth(tmp_path / "a.jsonl")
    b = synth(tmp_path / "b.jsonl", knobs=lambda s: {"lr": 0.1 if s < 7 else 0.1 + 2**-56, "dropout": 0.2})
    code, out, _ = diff(capsys, a, b)
    assert code == 1
    assert out.splitlines()[0] == "runs differ: first at step 7 (lr)"
    assert "at step 7" in out and repr(0.1 + 2**-56) in out  # shown in full, so the difference is visible
    c = compare(a, b)
    assert c.at_first == [("lr", 0.1, 0.1 + 2**-56)] and c.common_steps == 10 and not c.finals_differ


def test_loss_before_knob_and_both_listed(tmp_path, capsys):
    a = synth(tmp_path / "a.jsonl")
    b = synth(tmp_path / "b.jsonl", loss=lambda s: 1.0 / s + (s >= 3), knobs=lambda s: {"lr": 0.1 * (s < 3 or 2), "dropout": 0.2})
    code, out, _ = diff(capsys, a, b)
    assert code == 1 and out.splitlines()[0] == "runs differ: first at step 3 (loss, lr)"


def test_missing_step_and_shorter_run(tmp_path, capsys):
    a = synth(tmp_path / "a.jsonl")
    code, out, _ = diff(capsys, a, synth(tmp_path / "gap.jsonl", skip={4}))
    assert code == 1 and out.splitlines()[0] == "runs differ: first at step 4 (only in A)"
    code, out, _ = diff(capsys, synth(tmp_path / "short.jsonl", n=8, end="stopped"), a)
    assert code == 1 and out.splitlines()[0] == "runs differ: first at step 9 (only in B)"
    c = compare(tmp_path / "short.jsonl", a)
    assert c.common_steps == 8 and {"status", "steps"} <= set(c.finals_differ)


def test_same_steps_but_final_eval_differs(tmp_path, capsys):
    code, out, _ = diff(capsys, synth(tmp_path / "a.jsonl"), synth(tmp_path / "b.jsonl", acc=0.91))
    assert code == 1
    assert out.splitlines()[0] == "runs differ: all 10 steps identical, final metrics differ (final val acc, best val acc)"


def test_knob_in_one_run_only_and_config_context(tmp_path, capsys):
    a = synth(tmp_path / "a.jsonl")
    cfg = {"name": "toy", "seed": 1, "epochs": 2, "optimizer": {"lr": 0.1}, **{f"extra{i}": i for i in range(12)}}
    b = synth(tmp_path / "b.jsonl", knobs=lambda s: {"lr": 0.1, "dropout": 0.2, "momentum": 0.9},
              header={"knobs": {**KNOBS, "momentum": "constant"}, "config": cfg, "device": "cuda:0"})
    code, out, _ = diff(capsys, a, b)
    assert code == 1 and out.splitlines()[0] == "runs differ: first at step 1 (momentum)"
    assert "knobs only in B: momentum" in out
    assert "header.device" in out and "cuda:0" in out and "seed" in out
    assert "... and 4 more" in out  # 14 config differences, 10 shown


def test_quiet_prints_only_the_verdict(tmp_path, capsys):
    code, out, _ = diff(capsys, "--quiet", synth(tmp_path / "a.jsonl"), synth(tmp_path / "b.jsonl", skip={10}))
    assert code == 1 and out == "runs differ: first at step 10 (only in A)\n"


def test_exact_comparison():
    nan = float("nan")
    assert same(nan, nan) and same({"x": [1.0, nan]}, {"x": [1.0, nan]}) and same(1, 1.0)
    assert not same(0.0, -0.0) and not same(0.1, 0.1 + 2**-56) and not same(1.0, None) and not same(True, 1.0)


def test_streams_without_reading_whole_logs(tmp_path, monkeypatch):
    a, b = synth(tmp_path / "a.jsonl", n=3000), synth(tmp_path / "b.jsonl", n=3000)
    monkeypatch.setattr(reader, "read_log", lambda *a, **k: pytest.fail("compare read a whole log"))
    c = compare(a, b)
    assert c.match and c.common_steps == 3000


def test_real_runs(tmp_path, capsys):
    logs = []
    for i, sets in enumerate((["epochs=2"], ["epochs=2"], ["epochs=2", "optimizer.lr=0.02"])):
        logs.append(run_to_end(make_engine(tmp_path / str(i), sets)).path)
    code, out, _ = diff(capsys, logs[0].parent, logs[1])  # a run directory or its log
    assert code == 0 and out.startswith("runs match: 10 steps,")
    code, out, _ = diff(capsys, logs[0], logs[2])
    assert code == 1 and out.splitlines()[0] == "runs differ: first at step 1 (lr)"
    assert "optimizer.lr" in out and "0.02" in out


# ---- bad logs: one line on stderr, exit 2, never a traceback ---------------------------------------
def header_line(**over):
    return json.dumps({"format": FORMAT, "version": 1, "seq": 0, "type": "header", "time": 0.0, "run_id": "x", **over})


STEP = '{"seq":1,"type":"step","step":1,"time":0.1,"loss":0.5,"knobs":{"lr":0.1}}'
BAD = {
    "missing": None,
    "empty": b"",
    "binary": b"\x00\x01\x02\xff\xfe" * 20,
    "wrong format": b'{"format": "something-else", "version": 1}\n',
    "newer version": (header_line(version=99) + "\n").encode(),
}


def bad_log(tmp_path, kind):
    path = tmp_path / f"{kind.replace(' ', '_')}.jsonl"
    if BAD[kind] is not None:
        path.write_bytes(BAD[kind])
    return path


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("side", ["A", "B"])
def test_bad_log_is_one_line_exit_2(tmp_path, capsys, kind, side):
    good, bad = synth(tmp_path / "good.jsonl"), bad_log(tmp_path, kind)
    code, out, err = diff(capsys, *((bad, good) if side == "A" else (good, bad)))
    assert code == 2 and out == ""
    assert err.startswith("schedtui: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(bad) in err


def test_seq_gap_is_a_warning_and_damaged_fields_do_not_crash(tmp_path, capsys):
    a = synth(tmp_path / "a.jsonl", n=3)
    b = tmp_path / "b.jsonl"
    lines = a.read_text().splitlines()
    del lines[2]  # seq 2 (step 2) lost
    lines[1] = lines[1].replace('"knobs":{"lr":0.1,"dropout":0.2}', '"knobs":[0.1],"terms":7')
    b.write_text("\n".join(lines).replace('"run_id":"a"', '"run_id":"b","versions":"?"') + "\n")
    code, out, err = diff(capsys, a, b)
    assert code == 1 and out.splitlines()[0] == "runs differ: first at step 1 (lr, dropout)"
    assert err.startswith("schedtui diff: warning: B ") and "seq jumps from 1 to 3" in err


def test_torn_last_line_is_a_warning(tmp_path, capsys):
    a = synth(tmp_path / "a.jsonl")
    b = synth(tmp_path / "b.jsonl")
    with open(b, "a") as f:
        f.write('{"seq": 99, "type": "st')
    code, out, err = diff(capsys, a, b)
    assert code == 0 and out.startswith("runs match")
    assert err.startswith("schedtui diff: warning: B ") and "torn" in err and err.count("\n") == 1
