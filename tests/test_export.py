"""`schedtui export`: a per-step CSV that pandas loads, and a preset that reproduces a steered run."""

import io
import json
import time
import tomllib

import pandas as pd
import pytest

from engine_helpers import make_engine, of_type, run_to_end
from schedtui.cli import main
from schedtui.config import load_config
from schedtui.config.edits import logged_edits
from schedtui.events import FORMAT, EventLog, read_log
from schedtui.events.export import exported_preset, preset_config

PLANNED = "edits=[{step=3, knob='lr', op='set', value=0.005}]"


def export(capsys, *args):
    code = main(["export", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def steered(tmp_path_factory):
    """A completed tiny run with a live edit (at step 0) and a planned one (step 3), and an l2 loss term."""
    engine = make_engine(tmp_path_factory.mktemp("steered"), ["epochs=3", PLANNED, "loss.terms={task=1.0, l2=1e-4}"])
    engine.send("edit", knob="dropout", op="set", value=0.05)  # queued: applied at the first step boundary
    log = run_to_end(engine)
    assert [e["step"] for e in of_type(log, "edit")] == [0, 3]
    return log


def test_csv_loads_in_pandas_with_every_knob(steered, tmp_path, capsys):
    out_csv = tmp_path / "steps.csv"
    code, out, err = export(capsys, steered.path.parent, "--csv", out_csv)
    steps, evals = of_type(steered, "step"), of_type(steered, "eval")
    assert code == 0 and err == ""
    assert out == f"wrote {out_csv}: {len(steps) + len(evals)} rows ({len(steps)} steps, {len(evals)} evals)\n"
    df = pd.read_csv(out_csv)
    knobs = list(steered.header["knobs"])
    assert list(df.columns) == ["type", "step", "epoch", "time", "loss", "acc", "split", "model", *knobs, "term:task", "term:l2"]
    assert df["step"].dtype == "int64" and df["loss"].dtype == "float64" and df["lr"].dtype == "float64"
    rows = df[df["type"] == "step"]
    assert rows["step"].tolist() == [e["step"] for e in steps]
    assert rows["loss"].tolist() == [e["loss"] for e in steps]  # exact: floats are written in full
    for k in knobs:
        assert rows[k].tolist() == [e["knobs"][k] for e in steps], k
    assert rows["term:l2"].tolist() == [e["terms"]["l2"] for e in steps]
    ev = df[df["type"] == "eval"]
    assert ev["acc"].tolist() == [e["acc"] for e in evals] and set(ev["model"]) == {"raw"}
    assert ev[knobs].isna().all().all()


def test_csv_to_stdout_and_a_knob_seen_only_in_steps(tmp_path, capsys):
    path = tmp_path / "e.jsonl"
    with EventLog(path, {"run_id": "r", "knobs": {"lr": "constant"}, "config": {"name": "toy"}}) as log:
        log.emit("step", 1, epoch=0, loss=0.5, knobs={"lr": 0.1})
        log.emit("step", 2, epoch=0, loss=0.25, knobs={"lr": 0.1, "beta": 0.3})
    code, out, err = export(capsys, path, "--csv", "-")
    assert code == 0 and err == "wrote stdout: 2 rows (2 steps, 0 evals)\n"
    df = pd.read_csv(io.StringIO(out))
    assert list(df.columns)[-2:] == ["lr", "beta"] and df["beta"].isna().tolist() == [True, False]


def test_preset_reproduces_the_steered_run(steered, tmp_path, capsys):
    preset = tmp_path / "tuned.toml"
    code, out, err = export(capsys, steered.path, "--preset", preset)
    assert code == 0 and err == "" and "2 edits folded in" in out
    text = preset.read_text()
    comments = text[: text.index("\n\n")].splitlines()
    assert all(line.startswith("# ") for line in comments)
    assert str(steered.path) in text and steered.header["run_id"] in comments[2] and "2 edits" in comments[3]
    assert tomllib.loads(text) == preset_config(steered.header, steered.events)
    cfg, _ = load_config(str(preset))
    assert cfg["edits"] == logged_edits(steered.events) == [
        {"step": 0, "knob": "dropout", "op": "set", "value": 0.05}, {"step": 3, "knob": "lr", "op": "set", "value": 0.005}]
    src = steered.header["config"]
    assert {k: v for k, v in cfg.items() if k not in ("name", "description", "edits")} == \
        {k: v for k, v in src.items() if k not in ("name", "description", "edits")}
    assert cfg["name"] == f"moons-from-{steered.header['run_id']}" and "exported from run" in cfg["description"]
    rerun = run_to_end(make_engine(tmp_path, preset=str(preset)))  # the edits apply at the same steps
    assert main(["diff", "--quiet", str(steered.path), str(rerun.path)]) == 0
    assert capsys.readouterr().out.startswith("runs match:")


def test_preset_from_a_run_stopped_mid_way(tmp_path, capsys):
    engine = make_engine(tmp_path, ["epochs=400"])
    engine.start()
    deadline = time.monotonic() + 30
    while engine.step < 20:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    edit = engine.send("edit", knob="lr", op="scale", factor=0.5).result(timeout=30)
    engine.send("stop").result(timeout=30)
    assert engine.join(30)
    log = read_log(engine.run_dir)
    assert export(capsys, engine.run_dir, "--preset", tmp_path / "p.toml")[0] == 0
    text = (tmp_path / "p.toml").read_text()
    assert f"# the run ended early: stopped at step {log.events[-1]['step']}" in text
    cfg, _ = load_config(str(tmp_path / "p.toml"))
    assert cfg["edits"] == [{"step": edit["step"], "knob": "lr", "op": "scale", "factor": 0.5}] and cfg["epochs"] == 400


def test_none_values_are_left_out(tmp_path):
    path = tmp_path / "e.jsonl"
    cfg = {"name": "toy", "description": "d", "seed": 0, "optimizer": {"lr": 0.1, "momentum": None},
           "schedules": {"lr": {"kind": "step", "gamma": None}}}
    EventLog(path, {"run_id": "abc", "config": cfg}).close()
    text = exported_preset(path)
    back = tomllib.loads(text)
    assert back == preset_config(read_log(path).header, [])
    assert back["optimizer"] == {"lr": 0.1} and back["schedules"] == {"lr": {"kind": "step"}} and back["edits"] == []
    assert "# the log has no end event" in text


def test_refuses_to_overwrite_without_force(steered, tmp_path, capsys):
    target = tmp_path / "out.csv"
    target.write_text("keep me")
    code, _, err = export(capsys, steered.path, "--csv", target)
    assert code == 2 and err == f"schedtui: --csv {target}: already exists; use --force to overwrite it\n"
    assert target.read_text() == "keep me"
    assert export(capsys, steered.path, "--csv", target, "--force")[0] == 0
    assert target.read_text().startswith("type,step,")


@pytest.mark.parametrize("args, msg", [
    ([], "nothing to export"),
    (["--preset", "p.txt"], "must end in .toml"),
    (["--csv", "same.toml", "--preset", "same.toml"], "name the same file"),
    (["--csv", "nodir/x.csv"], "no such directory"),
])
def test_bad_arguments(steered, tmp_path, capsys, monkeypatch, args, msg):
    monkeypatch.chdir(tmp_path)
    code, _, err = export(capsys, steered.path, *args)
    assert code == 2 and msg in err and err.count("\n") == 1 and list(tmp_path.iterdir()) == []


# ---- bad logs: one line on stderr, exit 2, nothing written ------------------------------------------
def header_line(**over):
    return json.dumps({"format": FORMAT, "version": 1, "seq": 0, "type": "header", "time": 0.0, "run_id": "x",
                       "config": {"name": "x"}, **over})


BAD = {
    "missing": None,
    "empty": b"",
    "binary": bytes(range(256)),
    "wrong format": b'{"format": "csv", "version": 1}\n',
    "newer version": (header_line(version=99) + "\n").encode(),
}


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("what", ["--csv", "--preset"])
def test_bad_log_is_one_line_exit_2(tmp_path, capsys, kind, what):
    log = tmp_path / "events.jsonl"
    if BAD[kind] is not None:
        log.write_bytes(BAD[kind])
    target = tmp_path / "out" / ("o.csv" if what == "--csv" else "o.toml")
    target.parent.mkdir()
    code, out, err = export(capsys, log, what, target)
    assert code == 2 and out == "" and not target.exists()
    assert err.startswith(f"schedtui: {log}") and err.count("\n") == 1 and "Traceback" not in err


def test_torn_last_line_is_a_warning(tmp_path, capsys):
    log = tmp_path / "events.jsonl"
    log.write_text(header_line() + '\n{"seq":1,"type":"step","step":1,"time":0.1,"loss":0.5,"knobs":{}}\n{"seq":2,"ty')
    code, out, err = export(capsys, log, "--csv", tmp_path / "o.csv", "--preset", tmp_path / "o.toml")
    assert code == 0 and "1 row (1 step, 0 evals)" in out
    assert err.startswith(f"schedtui export: warning: {log}: line 3: torn") and err.count("\n") == 1
    assert tomllib.loads((tmp_path / "o.toml").read_text())["name"] == "x-from-x"


def test_seq_gap_is_a_warning_and_damaged_fields_do_not_crash(tmp_path, capsys):
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join([header_line(knobs=["not", "a", "table"]),
                              '{"seq":1,"type":"step","step":1,"time":0.1,"loss":0.5,"knobs":{"lr":0.1}}',
                              '{"seq":4,"type":"step","step":2,"time":0.2,"loss":0.4,"knobs":[1, 2],"terms":3}',
                              '{"seq":5,"type":"edit","step":2,"knob":"lr","op":"set"}']) + "\n")
    code, out, err = export(capsys, log, "--csv", tmp_path / "o.csv")
    assert code == 0 and out.startswith(f"wrote {tmp_path / 'o.csv'}: 2 rows")
    assert err.startswith(f"schedtui export: warning: {log}: seq jumps from 1 to 4") and err.count("\n") == 1
    assert pd.read_csv(tmp_path / "o.csv")["lr"].tolist()[0] == 0.1
    code, out, err = export(capsys, log, "--preset", tmp_path / "o.toml")  # the edit event lacks its value
    assert code == 2 and not (tmp_path / "o.toml").exists()
    assert err.splitlines()[-1] == f"schedtui: {log}: the edit event at seq 5 lacks its 'value' field; cannot export the run's edits"
