"""Snapshots of the main screen, fed scripted events (deterministic: no clock, no training)."""

import json
import math

import pytest

from schedtui.events.timeline import Timeline
from schedtui.ui.app import TrainApp
from schedtui.ui.replay_app import ReplayApp
from schedtui.ui.source import LogSource
from ui_helpers import until

SPE, EPOCHS = 20, 10


def scripted_source() -> LogSource:
    knobs = {"lr": "OneCycleLR max_lr=0.2 (step)", "momentum": "constant", "weight_decay": "linear end=0.001 (epoch)",
             "dropout": "milestones values={4:0.1} (epoch)", "label_smoothing": "constant"}
    header = {"format": "schedtui-events", "version": 1, "seq": 0, "type": "header", "time": 0.0, "preset": "moons",
              "device": "cpu", "config": {"epochs": EPOCHS}, "steps_per_epoch": SPE, "knobs": knobs}
    events, seq, t = [], 0, 0.0

    def emit(type_, step, **f):
        nonlocal seq
        seq += 1
        events.append({"seq": seq, "type": type_, "step": step, "time": round(t, 3), **f})

    dropout = 0.3
    for step in range(1, 6 * SPE + 1):
        t += 0.01
        if step == 70:
            emit("edit", 69, knob="dropout", op="set", value=0.05, old=dropout, new=0.05)
            dropout = 0.05
        lr = 0.2 * math.sin(math.pi * step / (SPE * EPOCHS)) + 0.008
        knob_values = {"lr": lr, "momentum": 0.9, "weight_decay": 1e-4 + 9e-4 * step / (SPE * EPOCHS),
                       "dropout": dropout, "label_smoothing": 0.0}
        emit("step", step, epoch=(step - 1) // SPE, loss=0.7 * math.exp(-step / 40) + 0.05 * math.sin(step), knobs=knob_values,
             samples_per_s=2500.0)
        if step % SPE == 0:
            e = step // SPE - 1
            emit("eval", step, split="val", model="raw", loss=0.6 * math.exp(-e / 2) + 0.1, acc=0.8 + 0.03 * e, reason="epoch")
            emit("epoch", step, epoch=e, epochs=EPOCHS, eta_s=(EPOCHS - e - 1) * 0.2, train_loss=0.3, val_loss=0.2, val_acc=0.9)
    emit("pause", 120, reason="user")
    return LogSource(header, events)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_main_screen(snap_compare, size):
    async def settle(pilot):
        await pilot.pause(0.3)

    assert snap_compare(TrainApp(scripted_source()), terminal_size=size, run_before=settle)


def test_edit_marks_and_states_from_scripted_events():
    """The same events, read without a terminal: what the screen is drawn from."""
    app = TrainApp(scripted_source())
    for ev in app.source.poll():
        app.view.apply(ev)
    assert app.view.state.status == "paused" and app.view.state.step == 120
    assert app.view.charts["dropout"].points()[1].count(True) == 1
    assert [line for _, line in app.view.take_lines() if "dropout" in line] == ["    69 dropout 0.3→0.05 set"]


def test_replay_screen(snap_compare, tmp_path):
    """Replay of the same scripted run, cursor moved back to the edit with `n` from the start."""
    source = scripted_source()
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(ev, separators=(",", ":")) + "\n" for ev in source.poll()))

    async def to_the_edit(pilot):
        await until(pilot, lambda: pilot.app.loading is None, what="loaded")
        await pilot.press("home", "n", "right")
        await pilot.pause(0.3)

    assert snap_compare(ReplayApp(Timeline(path)), terminal_size=(100, 30), run_before=to_the_edit)
