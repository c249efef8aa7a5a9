"""Commands from another thread take effect at a step boundary and become events."""

import math
import time

import pytest
import torch

from engine_helpers import make_engine, of_type, run_to_end
from schedtui.errors import UserError
from schedtui.events import read_log


def wait_for(pred, timeout=30.0):
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)


def test_pause_holds_the_run_and_edits_apply_from_the_next_update(tmp_path):
    engine = make_engine(tmp_path, ["epochs=20000"])  # outlasts the test; stopped at the end
    engine.start()
    pause = engine.send("pause").result(30)
    k = pause["step"]
    time.sleep(0.3)
    assert engine.step == k and engine.status == "paused"  # nothing moves while paused
    ev = engine.send("edit", knob="dropout", op="set", value=0.33).result(10)
    assert ev["step"] == k and ev["new"] == 0.33
    wd = engine.send("edit", knob="weight_decay", op="schedule", spec={"kind": "cosine", "end": 0.0, "unit": "step"}).result(10)
    assert wd["step"] == k
    with pytest.raises(UserError, match="above the allowed range"):
        engine.send("edit", knob="dropout", op="set", value=1.5).result(10)
    with pytest.raises(UserError, match="no knob named 'dropuot'"):
        engine.send("edit", knob="dropuot", op="set", value=0.1).result(10)
    drop = [m for m in engine.parts.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert all(m.p == 0.33 for m in drop)  # the live modules changed
    engine.send("resume").result(10)
    wait_for(lambda: engine.step > k + 20)
    engine.send("stop").result(10)
    assert engine.join(60)
    log = read_log(engine.run_dir / "events.jsonl")
    steps = of_type(log, "step")
    after = [e for e in steps if e["step"] > k]
    before = [e for e in steps if e["step"] <= k]
    assert len(after) > 20 and all(e["knobs"]["dropout"] == 0.33 for e in after)
    assert all(e["knobs"]["dropout"] != 0.33 for e in before)
    total = engine.parts.timing.total_steps  # cosine to 0 over the rest of the run, counted from the edit
    for e in after:  # the value for update s was computed at step s-1: (s-1-k) steps into the new schedule
        frac = (e["step"] - 1 - k) / (total - k)
        assert e["knobs"]["weight_decay"] == pytest.approx(wd["old"] * (1 + math.cos(math.pi * frac)) / 2)
    assert after[0]["knobs"]["weight_decay"] == wd["old"]  # continuous: no jump
    edits = of_type(log, "edit")
    assert [(e["knob"], e["op"], e["step"]) for e in edits] == [("dropout", "set", k), ("weight_decay", "schedule", k)]
    types = [e["type"] for e in log.events]
    assert types.index("pause") < types.index("edit") < types.index("resume")
    assert log.events[-1]["status"] == "stopped"


def test_validate_checkpoint_and_stop(tmp_path):
    engine = make_engine(tmp_path, ["epochs=20000"])
    engine.start()
    ev = engine.send("validate").result(30)
    assert ev["type"] == "eval" and ev["reason"] == "manual" and 0 <= ev["acc"] <= 1
    ck = engine.send("checkpoint").result(30)
    state = torch.load(ck["path"], weights_only=True)
    assert state["step"] == ck["step"] and set(state["model"]) == set(engine.parts.model.state_dict())
    engine.send("stop").result(30)
    assert engine.join(30)
    log = read_log(engine.run_dir / "events.jsonl")
    assert log.events[-1]["type"] == "end" and log.events[-1]["status"] == "stopped"
    assert log.events[-1]["epochs_completed"] < 20000
    order = [(e["type"], e.get("reason")) for e in log.events if e["type"] in ("eval", "checkpoint")]
    assert order.index(("eval", "manual")) < order.index(("checkpoint", "manual"))  # applied in the order sent
    with pytest.raises(UserError, match="the run has ended"):
        engine.send("pause").result(1)


def test_non_finite_loss_pauses_before_it_reaches_the_weights(tmp_path):
    engine = make_engine(tmp_path, ["epochs=5", "optimizer.kind=SGD", "optimizer.lr=1e6", "schedules={}"])
    engine.start()
    wait_for(lambda: engine.status == "paused")
    weights = [p.detach().clone() for p in engine.parts.model.parameters()]
    assert all(torch.isfinite(w).all() for w in weights)  # the last good weights: the bad update was not applied
    engine.send("stop").result(10)
    assert engine.join(30)
    log = read_log(engine.run_dir / "events.jsonl")
    warn = of_type(log, "warning")[0]
    assert "non-finite loss" in warn["message"] and "not applied to the weights" in warn["message"]
    pause = of_type(log, "pause")[0]
    steps = of_type(log, "step")
    assert pause["reason"] == "non-finite loss" and pause["step"] == warn["step"] - 1 == steps[-1]["step"]
    assert all(math.isfinite(s["loss"]) for s in steps)  # every update that trained had a finite loss
    assert log.events[-1]["status"] == "stopped"
    ck = torch.load(engine.run_dir / "checkpoints" / ("step-%08d.pt" % pause["step"]), weights_only=True)
    assert all(torch.isfinite(v).all() for v in ck["model"].values())  # `latest` is a finite checkpoint


def test_exception_in_training_thread_ends_crashed_with_a_readable_log(tmp_path):
    engine = make_engine(tmp_path, ["epochs=3"])
    model = engine.parts.model
    calls = {"n": 0}
    forward = model.forward

    def failing_forward(x):  # a bug in user code, five updates in
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("shape mismatch in layer 3")
        return forward(x)

    model.forward = failing_forward
    log = run_to_end(engine)
    err = of_type(log, "error")[0]
    assert err["message"] == "RuntimeError: shape mismatch in layer 3"
    assert "failing_forward" in (engine.run_dir / "traceback.txt").read_text()
    assert log.events[-1]["type"] == "end" and log.events[-1]["status"] == "crashed"
    assert [e["step"] for e in of_type(log, "step")] == [1, 2, 3, 4, 5]


def test_losses_read_in_batches_still_give_one_event_per_update(tmp_path):
    engine = make_engine(tmp_path, ["epochs=1", "engine.read_every=10", "engine.flush_interval=60"])
    log = run_to_end(engine)
    assert [e["step"] for e in of_type(log, "step")] == list(range(1, engine.parts.timing.total_steps + 1))


def test_unknown_command_is_refused(tmp_path):
    engine = make_engine(tmp_path, ["epochs=1"])
    with pytest.raises(UserError, match="unknown command 'jump'; valid: pause, resume"):
        engine.send("jump").result(1)


def test_events_a_command_made_say_who_sent_it(tmp_path):
    engine = make_engine(tmp_path, ["epochs=20000"])
    engine.start()
    pause = engine.send("pause", by="ctl").result(30)
    edit = engine.send("edit", knob="lr", op="set", value=0.01, by="attach").result(10)
    resume = engine.send("resume").result(10)
    engine.send("stop").result(10)
    assert engine.join(60)
    assert pause["by"] == "ctl" and edit["by"] == "attach" and "by" not in resume
    log = read_log(engine.run_dir / "events.jsonl")
    assert [e.get("by") for e in of_type(log, "edit")] == ["attach"]
