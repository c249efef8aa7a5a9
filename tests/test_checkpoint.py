"""Checkpoint contents and the pieces a resume stands on: weights_only loading, the `latest` pointer,
components registered in `engine.core.stateful`, the loader's mid-epoch position, plateau history, and
continuing an event log (seq, time, a torn last line)."""

import json
import time

import pytest
import torch
from engine_helpers import make_engine, of_type, run_to_end

from schedtui.engine import checkpoint
from schedtui.engine.loader import DeviceLoader
from schedtui.errors import UserError
from schedtui.events import EventLog, LogError, read_log
from schedtui.schedule import KnobSchedules, Timing

PLATEAU = 'schedules.weight_decay={kind="ReduceLROnPlateau", patience=0, factor=0.5, mode="max"}'
_ALLOWED = (torch.Tensor, str, int, float, bool, type(None))


def plain(obj, where="state"):
    """Every leaf is a tensor or a JSON-like scalar; containers are dicts, lists and tuples only."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, (str, int)), f"{where}: key {k!r}"
            plain(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            plain(v, f"{where}[{i}]")
    else:
        assert isinstance(obj, _ALLOWED), f"{where}: {type(obj).__name__}"


class Counter:
    """A component with state of its own, registered the way SWA/EMA and early stopping are."""

    def __init__(self):
        self.n, self.history = 0, []

    def state_dict(self):
        return {"n": self.n, "history": list(self.history), "t": torch.arange(3.0) * self.n}

    def load_state_dict(self, d):
        self.n, self.history = d["n"], list(d["history"])


def test_checkpoint_holds_the_whole_training_state_and_loads_weights_only(tmp_path):
    engine = make_engine(tmp_path, ["epochs=200", PLATEAU])
    counter = engine.core.stateful["counter"] = Counter()
    counter.n, counter.history = 7, ["a", 1.5]
    engine.start()
    engine.send("edit", knob="lr", op="scale", factor=0.5).result(30)
    while engine.step < 12:
        time.sleep(0.001)
    ev = engine.send("checkpoint").result(30)
    engine.send("stop").result(30)
    assert engine.join(30)

    assert ev["type"] == "checkpoint" and ev["reason"] == "manual"
    state = torch.load(ev["path"], weights_only=True)  # only tensors and plain containers: safe to load
    plain(state)
    assert state["format"] == "schedtui-checkpoint" and state["version"] == checkpoint.VERSION
    assert state["step"] == ev["step"] and state["position"]["epoch"] * 5 + state["position"]["batch"] == ev["step"]
    assert set(state["model"]) == set(engine.parts.model.state_dict())
    assert state["optimizer"]["state"]  # Adam's moments
    assert state["schedules"]["overrides"]["lr"]["op"] == "scale"
    assert [s for s, _ in state["schedules"]["observed"]] == [5 * (i + 1) for i in range(ev["step"] // 5)]
    assert set(state["knobs"]) == set(engine.parts.knobs)
    assert state["rng"]["torch"].dtype == torch.uint8 and len(state["rng"]["python"][1]) == 625
    assert state["engine"]["samples"] > 0 and state["stateful"]["counter"]["n"] == 7
    assert state["run_id"] == engine.log.header["run_id"]

    log = read_log(engine.run_dir / "events.jsonl")
    cks = of_type(log, "checkpoint")
    assert [c["reason"] for c in cks] == ["manual", "stopped"]  # and one more when the run stopped
    assert cks[-1]["step"] == log.events[-1]["step"] and log.events[-1]["type"] == "end"
    latest = (engine.run_dir / "checkpoints" / "latest").read_text().strip()
    assert latest == checkpoint.file_name(cks[-1]["step"]) and checkpoint.find(engine.run_dir).name == latest
    assert not list((engine.run_dir / "checkpoints").glob("*.tmp"))

    fresh = make_engine(tmp_path / "again", ["epochs=200", PLATEAU])  # the same config
    fresh.log.header["run_id"] = state["run_id"]
    other = fresh.core.stateful["counter"] = Counter()
    checkpoint.restore(fresh.core, checkpoint.read(ev["path"], "cpu"))
    assert (other.n, other.history) == (7, ["a", 1.5])
    assert fresh.step == ev["step"] and fresh.parts.schedules.overridden("lr") == "scale"
    for k, v in fresh.parts.model.state_dict().items():
        assert torch.equal(v, state["model"][k])
    fresh.log.close()


def test_a_checkpoint_that_cannot_be_written_is_a_warning_and_the_run_goes_on(tmp_path):
    engine = make_engine(tmp_path, ["epochs=200"])
    engine.core.stateful["odd"] = type("Odd", (), {"state_dict": lambda self: {"s": {1, 2}}, "load_state_dict": print})()
    engine.start()
    with pytest.raises(UserError, match="checkpoint at step .* not written: TypeError: odd.s is a set"):
        engine.send("checkpoint").result(30)
    engine.send("stop").result(30)
    assert engine.join(30)
    log = read_log(engine.run_dir / "events.jsonl")
    assert log.events[-1]["status"] == "stopped" and not of_type(log, "checkpoint")
    assert len([w for w in of_type(log, "warning") if "not written" in w["message"]]) == 2  # c, and at the stop
    assert not (engine.run_dir / "checkpoints").exists() or not list((engine.run_dir / "checkpoints").iterdir())


def test_checkpoint_every_n_epochs_and_at_completion(tmp_path):
    log = run_to_end(make_engine(tmp_path, ["epochs=5", "engine.checkpoint_every=2"]))
    cks = [(c["step"], c["reason"]) for c in of_type(log, "checkpoint")]
    assert cks == [(10, "epoch"), (20, "epoch"), (25, "completed")]
    names = sorted(p.name for p in (log.path.parent / "checkpoints").iterdir())
    assert names == ["latest", "step-00000010.pt", "step-00000020.pt", "step-00000025.pt"]


def test_loader_resumes_mid_epoch_with_the_transform_generator_where_it_was():
    x, y = torch.randn(50, 3), torch.arange(50.0)

    def noisy(xb, gen):  # a random augmentation: its draws depend on the generator's state
        return xb + torch.rand(xb.shape, generator=gen)

    loader = DeviceLoader(x, y, 8, shuffle=True, seed=3, drop_last=False, transform=noisy)
    loader.set_epoch(4)
    whole = list(loader)
    it = iter(loader)
    for _ in range(3):
        next(it)
    state = loader.rng_state()
    again = DeviceLoader(x, y, 8, shuffle=True, seed=3, drop_last=False, transform=noisy)
    again.set_epoch(4)
    rest = list(again.iter_from(3, state))
    assert len(rest) == len(whole) - 3
    for (xa, ya), (xb, yb) in zip(whole[3:], rest):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_plateau_history_and_edits_round_trip_through_json():
    timing = Timing(10, 100)
    specs = {"lr": {"kind": "ReduceLROnPlateau", "patience": 0, "factor": 0.5}}

    def fresh():
        return KnobSchedules({"lr": 0.1, "wd": 0.01}, specs, {}, timing)

    ks = fresh()
    for step, loss in ((10, 1.0), (20, 1.2), (30, 0.9)):
        ks.observe({"val_loss": loss}, step)
    ks.edit("wd", "schedule", step=30, current=ks.values(30), spec={"kind": "ReduceLROnPlateau", "patience": 0, "factor": 0.1})
    ks.observe({"val_loss": 0.95}, 40)
    again = fresh()
    again.load_state_dict(json.loads(json.dumps(ks.state_dict())))
    # the edit's plateau saw only what came after step 30: 0.95 is its first (best) value, no cut yet
    assert again.values(40) == ks.values(40) == {"lr": 0.025, "wd": 0.01}
    for k in (again, ks):  # and they go on alike
        k.observe({"val_loss": 0.97}, 50)
    assert again.values(50) == ks.values(50) == {"lr": 0.0125, "wd": 0.001}


def test_an_event_log_continues_after_a_torn_line(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, {"run_id": "r1"})
    for i in range(3):
        log.emit("step", i + 1, loss=float(i))
    with pytest.raises(LogError, match="another process is writing this log"):
        EventLog.reopen(path)  # a run still going is not continued under it
    log.close()
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"seq":4,"type":"step","st')  # the process died mid-write
    again = EventLog.reopen(path)
    assert again.header["run_id"] == "r1" and "torn" in again.repaired
    ev = again.emit("resume", 3, checkpoint="x")
    again.close()
    assert ev["seq"] == 4 and ev["time"] >= 0
    log = read_log(path)
    assert not log.warnings and [e["seq"] for e in log.events] == [1, 2, 3, 4]
    assert path.read_bytes().startswith(whole)  # every complete line is kept as it was

    path.write_bytes(whole.rstrip(b"\n"))  # a whole last event whose newline never reached the file
    again = EventLog.reopen(path)
    assert again.repaired is None
    again.emit("warning", 3, message="m")
    again.close()
    assert [e["seq"] for e in read_log(path).events] == [1, 2, 3, 4]
