"""events.jsonl is standard JSON on every line (format version 2), round-trips in schedtui, and version 1
logs (bare NaN/Infinity) still read everywhere: read_log, Timeline (bulk and careful), diff, export, replay."""

import csv
import io
import json
import math

import pytest

from engine_helpers import make_engine, run_to_end
from schedtui.cli import main
from schedtui.events import VERSION, EventLog, read_log
from schedtui.events.compare import compare, same
from schedtui.events.export import csv_rows
from schedtui.events.timeline import Timeline

NAN, INF = math.nan, math.inf


def strict(line: str):
    """json.loads as jq and JSON.parse read: NaN, Infinity and -Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"not standard JSON: {name}")

    return json.loads(line, parse_constant=refuse)


HEADER = {"run_id": "r", "preset": "NaN", "device": "cpu", "steps_per_epoch": 4, "knobs": {"lr": "constant", "dropout": "constant"},
          "config": {"name": "Infinity", "epochs": 2, "seed": 0, "optimizer": {"max_norm": INF, "floor": -INF},
                     "milestones": [1.0, NAN, "NaN"]}}


def emit_run(log) -> None:
    """A run whose numbers go non-finite in every kind of field, and whose strings say "NaN" on purpose."""
    for s in range(1, 9):
        loss = NAN if s in (3, 4) else (INF if s == 5 else 1.0 / s)
        log.emit("step", s, epoch=(s - 1) // 4, loss=loss, knobs={"lr": 0.1 if s != 6 else -INF, "dropout": 0.2},
                 samples_per_s=100.0, terms={"task": loss, "l2": 0.01})
        if s == 3:
            log.emit("warning", 3, message="NaN", loss=NAN)  # the message is text that happens to read NaN
        if s % 4 == 0:
            log.emit("eval", s, split="val", model="raw", loss=NAN, acc=0.5, metrics={"f1": INF, "name": "Infinity"},
                     reason="epoch")
            log.emit("epoch", s, epoch=s // 4 - 1, epochs=2, train_loss=NAN, val_loss=INF, val_acc=0.5, samples_per_s=1.0)
    log.emit("edit", 8, knob="lr", op="set", value=0.05, old=-INF, new=0.05)
    log.emit("end", 8, status="completed", epochs_completed=2, best_val_acc=0.5, best_val_loss=NAN, best_step=4)


@pytest.fixture
def v2_log(tmp_path):
    path = tmp_path / "v2" / "events.jsonl"
    with EventLog(path, HEADER) as log:
        emit_run(log)
    return path


def test_every_line_is_standard_json(v2_log):
    lines = v2_log.read_text(encoding="utf-8").splitlines()
    parsed = [strict(line) for line in lines]  # raises on a bare NaN or Infinity
    assert parsed[0]["version"] == VERSION == 2
    step3 = next(e for e in parsed if e.get("type") == "step" and e["step"] == 3)
    assert step3["loss"] == "NaN" and step3["$nonfinite"] == [["loss"], ["terms", "task"]]


def test_non_finite_numbers_come_back_as_floats_and_strings_stay_strings(v2_log):
    log = read_log(v2_log)
    h = log.header
    assert h["preset"] == "NaN" and h["config"]["name"] == "Infinity"
    assert h["config"]["optimizer"] == {"max_norm": INF, "floor": -INF}
    ms = h["config"]["milestones"]
    assert ms[0] == 1.0 and math.isnan(ms[1]) and ms[2] == "NaN"
    by = {(e["type"], e["step"]): e for e in log.events}
    assert math.isnan(by["step", 3]["loss"]) and by["step", 5]["loss"] == INF and by["step", 6]["knobs"]["lr"] == -INF
    assert math.isnan(by["step", 4]["terms"]["task"])
    assert by["warning", 3]["message"] == "NaN" and math.isnan(by["warning", 3]["loss"])
    assert math.isnan(by["eval", 4]["loss"]) and by["eval", 4]["metrics"] == {"f1": INF, "name": "Infinity"}
    assert math.isnan(by["epoch", 8]["train_loss"]) and by["epoch", 8]["val_loss"] == INF
    assert by["edit", 8]["old"] == -INF and math.isnan(by["end", 8]["best_val_loss"])
    assert all("$nonfinite" not in e for e in [h, *log.events])


def test_a_string_listed_nowhere_is_never_turned_into_a_float(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path, {"preset": "x"}) as log:
        log.emit("warning", 1, message="Infinity", detail=["-Infinity", "NaN"])
        log.emit("step", 1, loss="NaN", knobs={"lr": 0.1})  # a loss someone logged as text
    ev = read_log(path).events
    assert ev[0]["message"] == "Infinity" and ev[0]["detail"] == ["-Infinity", "NaN"] and ev[1]["loss"] == "NaN"
    tl = Timeline(path)
    tl.load()
    assert tl.step_event(1)["loss"] == "NaN"


def test_a_real_run_that_diverges_writes_standard_json(tmp_path):
    log = run_to_end(make_engine(tmp_path, ["epochs=3", "optimizer.kind=SGD", "optimizer.lr=1e6", "schedules={}",
                                                   "engine.on_nonfinite=warn"]))
    lines = log.path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        strict(line)
    text = "\n".join(lines)
    assert '"loss":"NaN"' in text or '"loss":"Infinity"' in text  # it did diverge (the updates were not applied)
    assert any(e["type"] == "warning" and not math.isfinite(e["loss"]) for e in log.events)


def test_timeline_bulk_and_careful_paths_read_v2(v2_log, tmp_path):
    spaced = tmp_path / "spaced.jsonl"  # another writer's spacing: the careful path
    spaced.write_text("".join(json.dumps(strict(line)) + "\n" for line in v2_log.read_text().splitlines()))
    ref = read_log(v2_log)
    for path in (v2_log, spaced):
        tl = Timeline(path, capacity=8)
        tl.load()
        assert tl.warnings == [] and tl.last_step == 8
        assert same(tl.events, [e for e in ref.events if e["type"] != "step"])
        means = {s: m for s, m, _, _ in tl.buckets(8)}
        assert means[3] is None or math.isfinite(means[3])  # non-finite losses are left out of the means
        assert tl.buckets(8)[2][2] == {"lr": 0.1, "dropout": 0.2}
        assert math.isnan(tl.step_event(4)["loss"]) and tl.step_event(6)["knobs"]["lr"] == -INF


# ---- version 1: bare NaN/Infinity, as the old writer wrote them ------------------------------------------

def v1_copy(v2_path, dst):
    """The same run as version 1 wrote it: json.dumps with allow_nan (bare NaN, Infinity)."""
    log = read_log(v2_path)
    head = {**log.header, "version": 1}
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in [head, *log.events]))
    assert "NaN" in dst.read_text() and "$nonfinite" not in dst.read_text()
    return dst


def test_v1_logs_read_everywhere(v2_log, tmp_path, capsys, monkeypatch):
    v1 = v1_copy(v2_log, tmp_path / "v1" / "events.jsonl")
    a, b = read_log(v1), read_log(v2_log)
    assert a.header["version"] == 2 and same(a.events, b.events) and same(a.header, {**b.header, "wall": a.header["wall"]})

    bulk = []
    real = Timeline._bulk
    monkeypatch.setattr(Timeline, "_bulk", lambda self, *x: bulk.append(real(self, *x)) or bulk[-1])
    tl = Timeline(v1, capacity=8)
    tl.load()
    assert bulk == [True] and tl.warnings == []  # the fast path takes v1 too
    assert same(tl.events, [e for e in b.events if e["type"] != "step"]) and math.isnan(tl.step_event(3)["loss"])

    c = compare(v1, v2_log)
    assert c.match, (c.at_first, c.finals_differ)
    rows_1 = list(csv_rows(v1))
    rows_2 = list(csv_rows(v2_log))
    assert same(rows_1, rows_2) and math.isnan(rows_1[3][4])

    assert main(["export", str(v1), "--csv", str(tmp_path / "o.csv")]) == 0
    table = list(csv.reader(io.StringIO((tmp_path / "o.csv").read_text())))
    assert table[3][4] == "nan"
    assert main(["diff", str(v1), str(v2_log)]) == 0
    assert main(["replay", str(v1)]) == 0
    out = capsys.readouterr().out
    assert "warning: NaN" in out and "Traceback" not in out


def test_a_resumed_v1_log_appends_v2_lines_that_read_back(v2_log, tmp_path):
    v1 = v1_copy(v2_log, tmp_path / "v1" / "events.jsonl")
    log = EventLog.reopen(v1)
    log.emit("step", 9, epoch=2, loss=NAN, knobs={"lr": 0.1, "dropout": 0.2}, samples_per_s=1.0)
    log.close()
    ev = read_log(v1).events[-1]
    assert ev["step"] == 9 and math.isnan(ev["loss"]) and "$nonfinite" not in ev
    strict(v1.read_text().splitlines()[-1])
