"""Snapshots of the main screen and replay, fed scripted events (deterministic: no clock, no training).

`pytest --snapshot-update` rewrites them after a deliberate change to the screen.
"""

import json
import math

import pytest

from schedtui.events.timeline import Timeline
from schedtui.ui.app import TrainApp
from schedtui.ui.replay_app import ReplayApp
from schedtui.ui.source import LogSource
from ui_helpers import until

SPE, EPOCHS = 20, 10


def scripted_events() -> tuple[dict, list[dict]]:
    knobs = {"lr": "OneCycleLR max_lr=0.2 (step)", "momentum": "constant", "weight_decay": "linear end=0.001 (epoch)",
             "dropout": "milestones values={4:0.1} (epoch)", "label_smoothing": "constant",
             "weight_decay@head": "CosineAnnealingWarmRestarts T_0=3 T_mult=2 eta_min=1e-05 (epoch)"}
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
        if step == 81:
            emit("swa", 80, op="start", update_every=1, update_unit="epoch")
        lr = 0.2 * math.sin(math.pi * step / (SPE * EPOCHS)) + 0.008
        knob_values = {"lr": lr, "momentum": 0.9, "weight_decay": 1e-4 + 9e-4 * step / (SPE * EPOCHS),
                       "dropout": dropout, "label_smoothing": 0.0, "weight_decay@head": 5e-4 * (1 + math.cos(step / 9)) / 2}
        emit("step", step, epoch=(step - 1) // SPE, loss=0.7 * math.exp(-step / 40) + 0.05 * math.sin(step), knobs=knob_values,
             samples_per_s=2500.0)
        if step % SPE == 0:
            e = step // SPE - 1
            emit("eval", step, split="val", model="raw", loss=0.6 * math.exp(-e / 2) + 0.1, acc=0.8 + 0.03 * e, reason="epoch")
            if step > 80:
                emit("eval", step, split="val", model="swa", loss=0.15, acc=0.97, reason="epoch")
            emit("eval", step, split="val", model="ema", loss=0.55 * math.exp(-e / 2) + 0.12, acc=0.81 + 0.03 * e, reason="epoch")
            emit("epoch", step, epoch=e, epochs=EPOCHS, eta_s=(EPOCHS - e - 1) * 0.2, train_loss=0.3, val_loss=0.2, val_acc=0.9)
        if step == 100:
            emit("checkpoint", 100, path="runs/moons-20261121-193000/checkpoints/step-00000100.pt", reason="manual")
    emit("warning", 110, message="lr was changed by something other than schedtui: 0.1 -> 0.2")
    emit("pause", 120, reason="user")
    return header, events


def scripted_source() -> LogSource:
    header, events = scripted_events()
    return LogSource(header, events)


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
def test_main_screen(snap_compare, size):
    async def settle(pilot):
        await pilot.pause(0.3)

    assert snap_compare(TrainApp(scripted_source()), terminal_size=size, run_before=settle)


def test_one_chart_in_the_whole_panel(snap_compare):
    async def zoom(pilot):
        await pilot.pause(0.2)
        await pilot.press("z", "right_square_bracket")  # the selected knob's chart (lr), then the next one
        await pilot.pause(0.2)

    assert snap_compare(TrainApp(scripted_source()), terminal_size=(120, 40), run_before=zoom)


def test_edit_marks_and_states_from_scripted_events():
    """The same events, read without a terminal: what the screen is drawn from."""
    app = TrainApp(scripted_source())
    for ev in app.source.poll():
        app.view.apply(ev)
    assert app.view.state.status == "paused" and app.view.state.step == 120
    assert (70, "bold yellow") in app.view.marks  # the edit at step 69 marks update 70, in every chart
    listed = [text for _, _, _, text in app.view.entries]
    assert "    69 dropout 0.3→0.05 set" in listed
    assert not any(" val " in text for text in listed)  # routine validations: charted, not listed
    assert app.view.eval_line() == "val 0.149 95.0% · swa 0.15 97.0% · ema 0.165 96.0% @120"


def test_replay_screen(snap_compare, tmp_path):
    """Replay of the same scripted run, cursor moved back to the edit with `n` from the start."""
    header, events = scripted_events()
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(ev, separators=(",", ":")) + "\n" for ev in [header, *events]))

    async def to_the_edit(pilot):
        await until(pilot, lambda: pilot.app.loading is None, what="loaded")
        await pilot.press("home", "n", "right")
        await pilot.pause(0.3)

    assert snap_compare(ReplayApp(Timeline(path)), terminal_size=(100, 30), run_before=to_the_edit)
