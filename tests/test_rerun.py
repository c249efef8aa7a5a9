"""Planned edits and `schedtui rerun`: a steered run re-executed applies every edit at its exact step."""

import json
import time

import pytest
from engine_helpers import make_engine, of_type, run_to_end

from schedtui.cli import main
from schedtui.engine.engine import Rerun
from schedtui.events import read_log


def wait_for(pred, timeout=30.0):
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.005)


def steered_run(tmp_path):
    """A real run edited five ways at steps that depend on timing, with a manual validation; stopped early."""
    engine = make_engine(tmp_path / "src", ["epochs=20000"])
    engine.start()
    engine.send("pause").result(30)
    engine.send("edit", knob="lr", op="set", value=0.003).result(10)  # while paused at the start
    engine.send("resume").result(10)
    for i, edit in enumerate([dict(knob="dropout", op="schedule", spec={"kind": "cosine", "end": 0.01, "unit": "step", "duration": 300}),
                              dict(knob="lr", op="scale", factor=0.5), dict(knob="label_smoothing", op="set", value=0.1),
                              dict(knob="lr", op="revert")]):
        target = engine.step + 60
        wait_for(lambda t=target: engine.step >= t)
        engine.send("edit", **edit).result(10)
        if i == 1:
            engine.send("validate").result(10)
    target = engine.step + 40
    wait_for(lambda: engine.step >= target)
    engine.send("stop").result(10)
    assert engine.join(30)
    return engine.run_dir


def steps(log):
    return [(e["step"], e["loss"], e["knobs"]) for e in of_type(log, "step")]


def only_run(runs_dir):
    (run,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return run


def test_rerun_reproduces_every_loss_and_knob_value_bit_for_bit(tmp_path, capsys):
    src_dir = steered_run(tmp_path)
    src = read_log(src_dir / "events.jsonl")
    assert len(of_type(src, "edit")) == 5 and len(steps(src)) > 250
    rc = main(["rerun", str(src_dir), "--headless", "--runs-dir", str(tmp_path / "re"), "--data-dir", str(tmp_path / "data")])
    assert rc == 0, capsys.readouterr().err
    re_dir = only_run(tmp_path / "re")
    re = read_log(re_dir / "events.jsonl")
    assert steps(re) == steps(src)  # exact equality of floats: bit for bit
    evals = lambda log: [(e["step"], e["loss"], e["acc"], e["reason"]) for e in of_type(log, "eval")]
    assert evals(re) == evals(src)
    assert [(e["step"], e["knob"], e["new"]) for e in of_type(re, "edit")] == [(e["step"], e["knob"], e["new"]) for e in of_type(src, "edit")]
    assert all(e.get("planned") for e in of_type(re, "edit"))
    assert not of_type(re, "pause")  # pause-free
    end = of_type(re, "end")[0]
    assert end["step"] == of_type(src, "end")[0]["step"] and end["status"] == "stopped"
    assert "stopped at step" in end["reason"]
    assert re.header["source"] == {"log": str(src_dir / "events.jsonl"), "run_id": src.header["run_id"], "until": None}
    first = of_type(src, "edit")[0]["step"]
    assert re.header["config"]["edits"][0] == {"step": first, "knob": "lr", "op": "set", "value": 0.003}


def test_rerun_until_ends_there_with_only_the_earlier_edits(tmp_path, capsys):
    src_dir = steered_run(tmp_path)
    src = read_log(src_dir / "events.jsonl")
    until = of_type(src, "edit")[2]["step"] + 5  # after the third edit, before the fourth
    assert main(["rerun", str(src_dir / "events.jsonl"), "--until", str(until), "--headless", "--runs-dir", str(tmp_path / "re"),
                 "--data-dir", str(tmp_path / "data")]) == 0
    re = read_log(only_run(tmp_path / "re") / "events.jsonl")
    assert steps(re) == [s for s in steps(src) if s[0] <= until]
    assert len(of_type(re, "edit")) == 3
    end = of_type(re, "end")[0]
    assert (end["step"], end["status"], end["reason"]) == (until, "stopped", f"rerun reached --until {until}")


def test_a_rerun_paused_at_until_or_edited_live_branches_from_its_source(tmp_path):
    plan = [(10, "edit", {"knob": "lr", "op": "set", "value": 0.002}), (200, "edit", {"knob": "lr", "op": "set", "value": 0.5})]
    engine = make_engine(tmp_path, ["epochs=20000"], rerun=Rerun(plan=plan, stop_at=50, stop_reason="rerun reached --until 50", pause_at_stop=True))
    engine.start()
    wait_for(lambda: engine.status == "paused")
    assert engine.step == 50
    engine.send("edit", knob="dropout", op="set", value=0.3).result(10)
    engine.send("resume").result(10)
    wait_for(lambda: engine.step > 260)
    engine.send("stop").result(10)
    engine.join(30)
    log = read_log(engine.run_dir / "events.jsonl")
    pause = of_type(log, "pause")[0]
    assert (pause["step"], pause["reason"]) == (50, "rerun reached --until 50")
    warning = of_type(log, "warning")[0]["message"]
    assert "branches from its source at step 50" in warning and "1 later edit will not be applied" in warning
    assert [e["value"] for e in of_type(log, "edit")] == [0.002, 0.3]  # the source's step-200 edit never came
    assert all(s["knobs"]["lr"] == 0.002 for s in of_type(log, "step") if s["step"] > 11)


def test_planned_edits_in_a_preset_apply_at_their_step(tmp_path):
    edits = ('edits=[{step=7, knob="dropout", op="set", value=0.35},'
             ' {step=9, knob="lr", op="schedule", spec={kind="linear", end=0.0, unit="step", duration=4}}]')
    engine = make_engine(tmp_path, ["epochs=4", edits])
    log = run_to_end(engine)
    by_step = {s["step"]: s["knobs"] for s in of_type(log, "step")}
    assert by_step[7]["dropout"] != 0.35 and by_step[8]["dropout"] == 0.35  # edit at step 7 -> update 8 onward
    assert by_step[13]["lr"] == pytest.approx(by_step[10]["lr"] / 4) and by_step[14]["lr"] == 0.0
    edits = of_type(log, "edit")
    assert [(e["step"], e["knob"], e["planned"]) for e in edits] == [(7, "dropout", True), (9, "lr", True)]


@pytest.mark.parametrize("edit, needle", [
    ('{step=3, knob="lrr", op="set", value=0.1}', "edits[0].knob: no knob named 'lrr'"),
    ('{step=99999, knob="lr", op="set", value=0.1}', "edits[0].step: 99999 is past the run's last update"),
    ('{step=3, knob="lr", op="bump", value=0.1}', "edits[0].op: 'bump' is not one of"),
    ('{step=3, knob="lr", op="set"}', "edits[0].value: missing (required)"),
])
def test_bad_planned_edits_are_one_line_errors(tmp_path, capsys, edit, needle):
    rc = main(["moons", "--headless", "--set", "device=cpu", "--set", f"edits=[{edit}]", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_planned_edit_that_no_longer_fits_warns_and_the_run_goes_on(tmp_path):
    engine = make_engine(tmp_path, ["epochs=3", 'edits=[{step=2, knob="dropout", op="set", value=1.5}]'])
    log = run_to_end(engine)
    (warning,) = of_type(log, "warning")
    assert warning["step"] == 2 and "planned edit at step 2 not applied" in warning["message"]
    assert of_type(log, "end")[0]["status"] == "completed"


def test_rerun_of_a_log_without_an_end_stops_at_its_last_step(tmp_path, capsys):
    src_dir = steered_run(tmp_path)
    path = src_dir / "events.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    cut = [i for i, line in enumerate(lines) if json.loads(line)["type"] == "step"][150]
    path.write_text("".join(lines[:cut + 1]) + lines[cut + 1][:20])  # killed mid-write: a torn last line
    assert main(["rerun", str(path), "--headless", "--runs-dir", str(tmp_path / "re"), "--data-dir", str(tmp_path / "data")]) == 0
    err = capsys.readouterr().err
    assert "torn last line" in err and "without an end" in err
    re = read_log(only_run(tmp_path / "re") / "events.jsonl")
    assert steps(re) == [s for s in steps(read_log(path)) if s[0] <= steps(re)[-1][0]]
    assert steps(re)[-1][0] == json.loads(lines[cut])["step"]


@pytest.mark.parametrize("content, needle", [
    (None, "no such file"), (b"", "is empty"), (b"\x00\x01\x02garbage\n", "not a schedtui event log"),
    (b'{"format": "other", "version": 1}\n', "format 'other'"),
    (b'{"format": "schedtui-events", "version": 99, "seq": 0, "type": "header"}\n', "newer schedtui"),
])  # a damaged line in the middle is skipped with a warning instead (test_log_damage.py)
def test_rerun_of_a_bad_log_is_a_one_line_error(tmp_path, capsys, content, needle):
    path = tmp_path / "events.jsonl"
    if content is not None:
        path.write_bytes(content)
    assert main(["rerun", str(path), "--headless", "--runs-dir", str(tmp_path / "re")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and err.startswith("schedtui:")
    assert not (tmp_path / "re").exists()
