"""`schedtui.monitor`: a training loop of your own, scheduled, logged and steered at the `mon.step` boundary."""

import threading
import time

import pytest
import torch
from torch import nn

import schedtui
from engine_helpers import of_type
from examples import own_loop
from schedtui.cli import main
from schedtui.events import read_log


def log_of(mon):
    return read_log(mon.run_dir / "events.jsonl")


def tiny(tmp_path, **kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    mon = schedtui.monitor(model, opt, runs_dir=tmp_path / "runs", **kw)

    def one_step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss, batch_size=64)
        return opt.param_groups[0]["lr"], model[2].p

    return mon, one_step


def test_the_example_loop_runs_headless_with_its_schedules(tmp_path, monkeypatch):
    assert own_loop.main(epochs=3, runs_dir=str(tmp_path / "runs")) == "completed"
    (run,) = (tmp_path / "runs").iterdir()
    log = read_log(run / "events.jsonl")
    steps = of_type(log, "step")
    assert len(steps) == 75 and log.header["config"]["experiment"] == "<own loop>"
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05, momentum=0.9)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=75)
    for s in steps:  # the lr your optimizer used at each update is OneCycleLR's
        assert s["knobs"]["lr"] == opt.param_groups[0]["lr"]
        opt.step()
        ref.step()
    assert steps[0]["knobs"]["dropout"] == 0.2 and steps[-1]["knobs"]["dropout"] < 0.1
    assert [e["acc"] for e in of_type(log, "eval")][-1] > 0.8 and of_type(log, "end")[0]["status"] == "completed"


def test_your_loop_pauses_takes_edits_and_stops_at_its_step_boundary(tmp_path):
    mon, one_step = tiny(tmp_path, epochs=1000, steps_per_epoch=10)
    seen = []
    with mon:
        def steer():
            e = mon.engine
            e.send("pause").result(10)
            k = e.step
            time.sleep(0.2)
            seen.append((k, e.step))  # nothing moved while paused: your loop waited in mon.step
            e.send("edit", knob="dropout", op="set", value=0.05).result(10)
            e.send("edit", knob="lr", op="scale", factor=0.5).result(10)
            e.send("resume").result(10)
            time.sleep(0.05)
            e.send("stop").result(10)

        threading.Thread(target=steer, daemon=True).start()
        values = []
        for _ in range(100000):
            values.append(one_step())
    assert seen and seen[0][0] == seen[0][1]
    assert values[-1] == (0.05, 0.05)  # the next updates used the edited values, on the live objects
    log = log_of(mon)
    assert [e["knob"] for e in of_type(log, "edit")] == ["dropout", "lr"]
    assert of_type(log, "end")[0]["status"] == "stopped" and mon.engine.status == "stopped"


def test_planned_edits_early_stopping_and_the_knob_value(tmp_path):
    mon, one_step = tiny(tmp_path, epochs=50, steps_per_epoch=4, config={
        "edits": [{"step": 6, "knob": "lr", "op": "set", "value": 0.01}],
        "early_stopping": {"patience": 2}})
    with mon:
        for epoch in range(50):
            for _ in range(4):
                lr, _ = one_step()  # after mon.step: the value the next update will use
                if mon.engine.step == 6:
                    assert lr == 0.01 and mon.value("lr") == 0.01  # planned at step 6: updates 7 on
            mon.epoch(val_loss=1.0 + epoch, val_acc=0.5)  # never better: early stopping after 2 misses
    log = log_of(mon)
    lrs = {e["step"]: e["knobs"]["lr"] for e in of_type(log, "step")}
    assert lrs[6] == 0.1 and lrs[7] == 0.01
    assert of_type(log, "early_stop")[0]["step"] == 12
    assert of_type(log, "end")[0]["reason"].startswith("early stopping")


def test_an_error_in_your_loop_ends_the_run_crashed_and_is_raised(tmp_path):
    mon, one_step = tiny(tmp_path, epochs=2, steps_per_epoch=4)
    with pytest.raises(ZeroDivisionError):
        with mon:
            one_step()
            1 / 0
    log = log_of(mon)
    assert of_type(log, "end")[0]["status"] == "crashed" and "ZeroDivisionError" in of_type(log, "error")[0]["message"]
    assert (mon.run_dir / "traceback.txt").is_file()
    mon2, one_step2 = tiny(tmp_path, epochs=2, steps_per_epoch=4)
    with pytest.raises(KeyboardInterrupt):
        with mon2:
            one_step2()
            raise KeyboardInterrupt
    assert of_type(log_of(mon2), "end")[0]["status"] == "interrupted"


def test_a_run_of_your_own_loop_cannot_be_rerun_and_says_why(tmp_path, capsys):
    mon, one_step = tiny(tmp_path, epochs=1, steps_per_epoch=2)
    with mon:
        one_step()
        one_step()
    capsys.readouterr()
    assert main(["rerun", str(mon.run_dir), "--headless", "--runs-dir", str(tmp_path / "re")]) == 2
    err = capsys.readouterr().err
    assert "driven by its own training loop" in err and len(err.strip().splitlines()) == 1
    assert main(["replay", str(mon.run_dir)]) == 0  # replay works


def test_bad_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(schedtui.experiment.UserError, match="steps_per_epoch must be a positive int"):
        schedtui.monitor(nn.Linear(2, 2), torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), epochs=1, steps_per_epoch=0)
    with pytest.raises(schedtui.experiment.UserError, match="no knob named 'lrr'"):
        m = nn.Linear(2, 2)
        with schedtui.monitor(m, torch.optim.SGD(m.parameters(), lr=0.1), epochs=1, steps_per_epoch=2,
                              schedules={"lrr": {"kind": "constant"}}, runs_dir=tmp_path / "r"):
            pass


def test_your_loop_under_the_live_screen_in_a_terminal(tmp_path, monkeypatch):
    from pathlib import Path

    from test_cli_tty import run_in_pty

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the child imports examples/ from here
    code = f"from examples.own_loop import main; print('status', main(epochs=20000, runs_dir={str(tmp_path / 'runs')!r}))"
    status, tail = run_in_pty([], [("RUNNING", ["q"]), ("The run is still going", ["s"])], python_args=["-c", code])
    assert status == 0 and b"status stopped" in tail, tail[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    log = read_log(run / "events.jsonl")
    assert of_type(log, "step") and of_type(log, "end")[0]["status"] == "stopped"


def test_run_returns_the_status_and_raises_the_loops_error_after_ending_the_run_crashed(tmp_path):
    mon, one_step = tiny(tmp_path, epochs=2, steps_per_epoch=3)

    def train(mon):
        for _ in range(4):
            one_step()
        raise ValueError("my loop broke")

    with pytest.raises(ValueError, match="my loop broke"):
        mon.run(train)
    assert mon.status == "crashed" and of_type(log_of(mon), "end")[0]["status"] == "crashed"
    mon, one_step = tiny(tmp_path, epochs=1, steps_per_epoch=3)
    assert mon.run(lambda mon: [one_step() for _ in range(3)]) == "completed"


def test_a_bad_refresh_rate_is_a_one_line_error():
    model = nn.Linear(2, 2)
    for bad in (0, 100, float("nan"), "5", True):
        with pytest.raises(schedtui.experiment.UserError, match=r"refresh_hz must be a number in \[0.5, 60\]"):
            schedtui.monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, steps_per_epoch=1,
                             refresh_hz=bad)
