"""One fold of a log: the live screen, replay (its timeline and screen), diff, export and the headless and replay
summaries say the same about the same log.

Logs: a synthetic one with every fact in it (SWA and EMA evaluations better than the raw model's, early stopping
with the best weights restored and evaluated again, a pause, an edit, a run killed past its last checkpoint and
resumed, the superseded copies holding an edit and an evaluation that would be the best), the same run as if it had
never been killed, its damaged and re-spaced copies; and real tiny runs: SWA + EMA + early stopping and its rerun,
and a run killed past a checkpoint and resumed beside one that ran straight through."""

import io
import json
import time

import pytest
from rich.console import Console

from engine_helpers import TINY_MOONS, make_engine, run_to_end
from schedtui.cli import main
from schedtui.commands.replay import summary
from schedtui.config import load_config
from schedtui.engine import checkpoint
from schedtui.events import EventLog, read_log
from schedtui.events import timeline as timeline_mod
from schedtui.events.compare import CONTEXT, compare
from schedtui.events.export import csv_rows, scan
from schedtui.events.reader import iter_events
from schedtui.events.state import RunState
from schedtui.events.summary import summary_rows
from schedtui.events.timeline import Timeline
from schedtui.headless import run_headless, summary_table
from schedtui.launch import start_run
from schedtui.ui.review import ReviewView
from schedtui.ui.view import RunView

HEADER = {"run_id": "f", "preset": "toy", "device": "cpu", "steps_per_epoch": 10, "knobs": {"lr": "constant"},
          "config": {"name": "toy", "epochs": 4, "seed": 0, "early_stopping": {"metric": "val_loss", "patience": 2}}}
RAW = {10: (0.9, 0.6), 20: (0.4, 0.8), 30: (0.5, 0.85), 40: (0.6, 0.7)}  # the best by val_loss is step 20's
SWA = {30: (0.2, 0.95), 40: (0.25, 0.9)}  # better than every raw evaluation: never the run's best
EMA = {10: (0.8, 0.65), 20: (0.45, 0.75), 30: (0.42, 0.8), 40: (0.35, 0.88)}
EXPECTED = [("status", "stopped"), ("steps", 40), ("epochs completed", 4),
            ("final val loss", 0.4), ("final val acc", 0.8),  # the restored best weights, evaluated again
            ("best by", "val_loss"), ("best val loss", 0.4), ("best val acc", 0.8), ("best step", 20),
            ("final swa val loss", 0.25), ("final swa val acc", 0.9), ("final ema val loss", 0.35), ("final ema val acc", 0.88)]


def write(path, resumed=True):
    """The synthetic run; `resumed`: killed at step 36 past its checkpoint at 30, and resumed from it."""
    with EventLog(path, HEADER) as log:
        def step(s, loss):
            log.emit("step", s, epoch=(s - 1) // 10, loss=loss, knobs={"lr": 0.05 if s > 12 else 0.1}, samples_per_s=10.0)

        def epoch_end(s):
            log.emit("eval", s, split="val", model="raw", loss=RAW[s][0], acc=RAW[s][1], reason="epoch")
            for model, table in (("swa", SWA), ("ema", EMA)):
                if s in table:
                    log.emit("eval", s, split="val", model=model, loss=table[s][0], acc=table[s][1], reason="epoch")
            if s == 40:
                log.emit("early_stop", 40, metric="val_loss", best=0.4, best_step=20, patience=2,
                         evaluations_without_improvement=2, restored=True)
                log.emit("eval", 40, split="val", model="raw", loss=0.4, acc=0.8, reason="restored_best")
            log.emit("epoch", s, epoch=s // 10 - 1, epochs=4, train_loss=1.0 / s, val_loss=RAW[s][0], val_acc=RAW[s][1])

        for s in range(1, 31):
            step(s, 1.0 / s)
            if s == 12:
                log.emit("edit", 12, knob="lr", op="set", value=0.05, old=0.1, new=0.05)
            if s == 15:
                log.emit("pause", 15, reason="user")
                log.emit("resume", 15)
            if s == 20:
                log.emit("swa", 20, op="start", update_every=1, update_unit="epoch", n_averaged=0)
            if s % 10 == 0:
                epoch_end(s)
        log.emit("checkpoint", 30, path="checkpoints/step-00000030.pt", reason="epoch")
        if resumed:
            for s in range(31, 37):  # what the killed process logged past its checkpoint
                step(s, 5.0)
                if s == 33:
                    log.emit("edit", 33, knob="lr", op="set", value=9.0, old=0.05, new=9.0)
                if s == 34:
                    log.emit("eval", 34, split="val", model="raw", loss=0.01, acc=0.99, reason="manual")
            log.emit("resume", 30, checkpoint="checkpoints/step-00000030.pt", epoch=3, batch=0, superseded=[31, 36])
            log.emit("warning", 30, message="resume: steps 31..36 logged before the checkpoint's step 30 was resumed are "
                                            "superseded by the steps that follow")
        for s in range(31, 41):
            step(s, 1.0 / s)
            if s == 40:
                epoch_end(s)
        log.emit("end", 40, status="stopped", epochs_completed=4, elapsed_s=1.5, best_metric="val_loss", best_val_loss=0.4,
                 best_val_acc=0.8, best_step=20, reason="early stopping: val_loss did not improve for 2 evaluations")
    return path


def damaged(src, dst):
    lines = src.read_bytes().split(b"\n")
    lines.insert(8, b'{"seq": 7, "type": "st')  # a line cut short in the middle of the log
    dst.write_bytes(b"\n".join(lines))
    return dst


def respaced(src, dst):
    dst.write_text("".join(json.dumps(json.loads(x)) + "\n" for x in src.read_bytes().split(b"\n") if x))
    return dst


def folds(path, capacity=2048) -> dict:
    """The run as each consumer sees it."""
    events = iter_events(path, strict=False)
    screen = RunView()
    for ev in events:
        screen.apply(ev)
    tl = Timeline(path, capacity=capacity)
    tl.load()
    review = ReviewView(tl)
    review.set_cursor(tl.last_step)
    return {"screen": screen.state, "timeline": tl.state, "replay screen": review.state, "diff": compare(path, path).a.state,
            "export": scan(path).state}, tl


def table_text(state, tmp_path) -> str:
    console = Console(file=io.StringIO(), width=300, color_system=None)
    console.print(summary_table(state, tmp_path))
    return console.file.getvalue()


@pytest.fixture(params=["bulk", "small chunks", "a chunk ends at the resume", "damaged", "re-spaced"])
def variant(request, tmp_path, monkeypatch):
    log = write(tmp_path / "events.jsonl")
    if request.param == "small chunks":
        monkeypatch.setattr(timeline_mod, "CHUNK", 2048)
    if request.param == "a chunk ends at the resume":  # the bulk path takes the superseded copies, then the resume
        data = log.read_bytes()
        after = data.index(b"\n", data.index(b'"type":"warning"')) + 1
        monkeypatch.setattr(timeline_mod, "CHUNK", after - data.index(b"\n") - 1 + 10)
    if request.param == "damaged":
        return damaged(log, tmp_path / "damaged.jsonl")
    if request.param == "re-spaced":
        return respaced(log, tmp_path / "spaced.jsonl")
    return log


@pytest.mark.parametrize("capacity", [8, 10, 2048])  # buckets of 5 (the resume on a bucket's edge), 4 (inside one), 1
def test_every_consumer_folds_the_same_run(variant, capacity, tmp_path):
    seen, tl = folds(variant, capacity)
    want = [*EXPECTED, ("edits", 1), ("warnings", 1), ("elapsed s", 1.5)]  # the superseded edit is not the run's
    for name, st in seen.items():
        assert st.finals() == want, name
    rows = summary_rows(seen["timeline"])
    assert rows == summary_rows(seen["export"]) == summary_rows(seen["diff"]) == summary_rows(seen["screen"])
    assert ("superseded", "steps 31..36: logged before a resume from an earlier checkpoint, then run again") in rows
    assert ("val loss", "0.4 (the best weights, restored)") in rows
    assert ("best val", "loss 0.4, accuracy 80.00% at step 20 (by val_loss)") in rows
    assert [w for w in tl.warnings] == (["line 9: skipped, not a valid event (not JSON)"] if "damaged" in variant.name else [])
    printed, table = summary(tl), table_text(seen["screen"], tmp_path)
    for label, text in rows:  # the replay summary and the headless table print the same rows
        assert f"{label}: {text}" in printed and label in table and text in table


def test_the_later_copy_wins_everywhere(variant, tmp_path):
    straight = write(tmp_path / "straight.jsonl", resumed=False)
    c = compare(variant, straight)
    assert c.match and c.common_steps == 40, (c.first_step, c.finals_differ)
    assert [f[0] for f in c.finals if f[3]] == ["warnings"]  # context: the resume's own warning
    for capacity in (8, 10):
        a, b = Timeline(variant, capacity=capacity), Timeline(straight, capacity=capacity)
        a.load()
        b.load()
        assert [(s, kn) for s, _, kn, _ in a.buckets(40)] == [(s, kn) for s, _, kn, _ in b.buckets(40)]
        assert [m for _, m, _, _ in a.buckets(40)] == pytest.approx([m for _, m, _, _ in b.buckets(40)], rel=1e-12)
        resumed = [e for e in a.events if e["type"] != "warning" and not (e["type"] == "resume" and "checkpoint" in e)]
        assert [(e["type"], e["step"]) for e in resumed] == [(e["type"], e["step"]) for e in b.events]
        for k in (30, 31, 34, 36, 40):
            assert a.step_event(k)["loss"] == 1.0 / k
    rows = lambda log: [r[:3] + r[4:] for r in csv_rows(log)]  # all but the time
    assert rows(variant) == rows(straight)


def test_diff_finals_count_swa_and_ema_as_their_own(tmp_path):
    a = write(tmp_path / "a.jsonl", resumed=False)
    b = tmp_path / "b.jsonl"
    b.write_text(a.read_text().replace('"model":"swa","loss":0.25,', '"model":"swa","loss":0.125,'))
    c = compare(a, b)
    assert not c.match and c.first_step is None and c.finals_differ == ["final swa val loss"]


# ---- real runs ---------------------------------------------------------------------------------------------------------
AVERAGING = ["epochs=12", "model.batchnorm=true", "swa.start=2", "swa.swa_lr=0.05", "ema.decay=0.9",
             "early_stopping.patience=2", "early_stopping.min_delta=0.02", 'early_stopping.metric="val_loss"']


def test_a_real_run_with_swa_ema_and_early_stopping_its_replay_and_its_rerun_agree(tmp_path, capsys):
    cfg, _ = load_config("moons", [*TINY_MOONS, *AVERAGING])
    started = start_run(cfg, tmp_path / "data", tmp_path / "runs", start=False)
    started.engine.start()
    live = run_headless(started.engine, started.events, RunState.from_header(started.header),
                        Console(file=io.StringIO()))
    path = started.run_dir / "events.jsonl"
    log = read_log(path)
    es = [e for e in log.events if e["type"] == "early_stop"]
    assert es and es[0]["restored"] and live.restored_best and live.final_eval["reason"] == "restored_best"
    assert {"swa", "ema"} <= set(live.evals)
    # the best is the weights early stopping restored (min_delta=0.02 kept it from taking a slightly lower loss)
    assert (live.best_metric, live.best_step, live.best_val_loss) == ("val_loss", es[0]["best_step"], es[0]["best"])
    assert (live.final_eval["loss"], live.final_eval["acc"]) == (live.best_val_loss, live.best_val_acc)
    seen, tl = folds(path)
    for name, st in seen.items():
        assert st.finals() == live.finals(), name
    assert summary_rows(seen["timeline"]) == summary_rows(live)
    capsys.readouterr()
    assert main(["rerun", str(started.run_dir), "--headless", "--runs-dir", str(tmp_path / "re"),
                 "--data-dir", str(tmp_path / "data")]) == 0
    (again,) = (tmp_path / "re").glob("*/events.jsonl")
    c = compare(path, again)
    assert c.match and {f[0] for f in c.finals if f[3]} <= CONTEXT


def test_a_real_run_killed_past_its_checkpoint_and_resumed_diffs_equal_to_a_straight_run(tmp_path, capsys):
    sets = ["epochs=4", "engine.checkpoint_every=1"]
    straight = run_to_end(make_engine(tmp_path / "straight", sets)).path
    engine = make_engine(tmp_path / "killed", sets)
    engine.start()
    while engine.step < 8:
        time.sleep(0.0005)
    engine.send("stop").result(30)
    assert engine.join(30)
    stop, path = engine.step, engine.run_dir / "events.jsonl"
    for f in (checkpoint.LATEST, checkpoint.file_name(stop)):  # as if killed: no final checkpoint, no end event
        (engine.run_dir / "checkpoints" / f).unlink()
    path.write_bytes(b"".join(ln for ln in path.read_bytes().splitlines(keepends=True)
                              if b'"type":"end"' not in ln and b'"reason":"stopped"' not in ln))
    capsys.readouterr()
    assert main(["resume", str(engine.run_dir), "--headless"]) == 0
    printed = capsys.readouterr().out
    resume = [e for e in read_log(path).events if e["type"] == "resume"][-1]
    assert resume["superseded"] == [resume["step"] + 1, stop]
    assert main(["diff", str(path), str(straight)]) == 0
    assert capsys.readouterr().out.startswith("runs match: 20 steps,")
    seen, tl = folds(path)
    for label, text in summary_rows(tl.state):  # the resumed run's headless summary is the whole run's, as replay's
        assert label in printed and text[:40] in printed
    want = dict(folds(straight)[0]["timeline"].finals())
    for name, st in seen.items():
        got = dict(st.finals())
        assert {k: v for k, v in got.items() if k not in ("warnings", "elapsed s")} == \
               {k: v for k, v in want.items() if k not in ("warnings", "elapsed s")}, name
        if name != "replay screen":  # it folds the timeline's events, the superseded ones already left out
            assert st.superseded == [(resume["step"] + 1, stop)], name
    assert [r[1] for r in csv_rows(path) if r[0] == "step"] == list(range(1, 21))
    later = {e["step"]: e for e in read_log(path).events if e["type"] == "step"}  # the last copy of each step
    assert all(tl.step_event(k) == later[k] for k in range(1, 21))
