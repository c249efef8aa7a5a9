"""The live UI against a tiny real run on the CPU: every key and dialog, as a person uses them."""

import time

import pytest
from textual.widgets import Button, Static

from schedtui.events import read_log
from schedtui.ui.edit import EditDialog
from schedtui.ui.screens import HelpScreen, QuitDialog
from schedtui.ui.view import fmt
from ui_helpers import (knob_row, latest_eval_step_on_screen, live_app, pause_run, region_lines, screen_lines,
                        select_knob, stop_engine, table_value_on_screen, type_text, until)

LONG = ["epochs=20000", "engine.eval_every=50"]  # outlasts every test (each stops it); validates now and then


def log_of(app):
    return read_log(app.source.run_dir / "events.jsonl", strict=False)


def status_text(app) -> str:
    return app.status_bar.render().plain


def event_text(app) -> str:
    return app.event_log.plain()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_main_screen_shows_the_run_live(tmp_path, size):
    app = live_app(tmp_path, LONG)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.view.state is not None and app.view.state.step > 50, what="steps")
        await pilot.pause(0.2)
        top = screen_lines(app)[:2]
        assert "moons" in top[0] and "cpu" in top[0] and "RUNNING" in top[0] and "ETA" in top[1]  # the ETA, even at 80 columns
        await until(pilot, lambda: "·  cpu " in screen_lines(app)[1], timeout=5, what="the process's CPU share (a second in)")
        top = screen_lines(app)[:2]
        assert "mem " in top[1] and "gpu" not in top[1]  # the resource line; no GPU here, no word of one
        names = [c.title for c in app.view.charts()]
        assert names[:3] == ["loss", "val loss", "val acc"] and {"lr", "dropout", "weight_decay"} <= set(names)
        charts = region_lines(app, app.charts)
        assert charts[0].startswith("loss") and any(ch in "▁▂▃▄▅▆▇█" or 0x2800 < ord(ch) < 0x2900 for ch in "".join(charts[:2]))
        assert charts[-1].split()[0] == "steps"  # the shared x-axis
        rows = {r.knob for r in app.view.knob_rows()}
        assert {"lr", "momentum", "weight_decay", "dropout", "label_smoothing", "grad_clip", "loss@task"} <= rows
        await until(pilot, lambda: app.view.knob_info, what="knob descriptions")
        assert knob_row(app, "lr").schedule.startswith("CosineAnnealingLR")
        stop_engine(app)


async def test_what_is_drawn_follows_the_run_and_its_end(tmp_path):
    """The knob table's values and the latest validation, as drawn on the screen, keep up with a
    running run and show how it ended."""
    app = live_app(tmp_path, ["epochs=300", "engine.eval_every=2"])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: table_value_on_screen(app, "lr") is not None, what="the table drawn")
        await until(pilot, lambda: latest_eval_step_on_screen(app) >= 20, what="the first evaluation drawn")
        first = latest_eval_step_on_screen(app)
        await until(pilot, lambda: latest_eval_step_on_screen(app) >= first + 100, what="later evaluations drawn")
        await until(pilot, lambda: table_value_on_screen(app, "lr") not in ("0.01", None), what="the lr value moving")
        assert app.view.state.end is None  # all of it while the run went on
        stop_engine(app)
        await until(pilot, lambda: "STOPPED" in screen_lines(app)[0], what="the end drawn")
        await pilot.pause(0.2)
        assert table_value_on_screen(app, "lr") == fmt(app.view.state.knobs["lr"])
        assert latest_eval_step_on_screen(app) == max(e["step"] for e in log_of(app).events if e["type"] == "eval")
        assert knob_row(app, "lr").next == "-"  # a finished run has no next change (it was "every step")


async def test_space_pauses_and_resumes(tmp_path):
    app = live_app(tmp_path, LONG)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.view.state is not None and app.view.state.step > 5)
        await pilot.press("space")
        await until(pilot, lambda: "PAUSED" in status_text(app), what="PAUSED")
        step = app.source.engine.step
        await pilot.pause(0.3)
        assert app.source.engine.step == step and "paused (user)" in event_text(app)
        await pilot.press("space")
        await until(pilot, lambda: app.source.engine.step > step + 5, what="resume")
        assert "RUNNING" in status_text(app) and "resumed" in event_text(app)
        stop_engine(app)


async def test_edit_dropout_and_weight_decay_changes_the_next_step(tmp_path):
    app = live_app(tmp_path, LONG)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.view.state is not None and app.view.state.step > 5)
        await select_knob(pilot, app, "dropout")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditDialog), what="edit dialog")
        await type_text(pilot, app, "0.3")
        await until(pilot, lambda: "next step:" in str(app.screen.query_one("#edit-preview", Static).visual), what="preview")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, EditDialog), what="dialog closed")
        await until(pilot, lambda: knob_row(app, "dropout").edit == "set", what="table shows the edit")
        # weight decay, paused: a new schedule from here, by the radio buttons
        await pause_run(pilot, app)
        await select_knob(pilot, app, "weight_decay")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditDialog))
        await pilot.click("#op-schedule")
        await type_text(pilot, app, "cosine end=0 unit=step")
        await until(pilot, lambda: not app.screen.query_one("#edit-apply", Button).disabled, what="preview ok")
        await pilot.click("#edit-apply")
        await until(pilot, lambda: knob_row(app, "weight_decay").edit == "schedule")
        await until(pilot, lambda: "→" in event_text(app) and "cosine" in event_text(app), what="event line")
        assert "dropout " in event_text(app) and "→0.3 set" in event_text(app)
        await pilot.press("space")
        await until(pilot, lambda: app.source.engine.step > app.view.last_edit["step"] + 3, what="resumed")
        stop_engine(app)
        log = log_of(app)
        edits = {e["knob"]: e for e in log.events if e["type"] == "edit"}
        steps = [e for e in log.events if e["type"] == "step"]
        k = edits["dropout"]["step"]
        assert [e["knobs"]["dropout"] for e in steps if e["step"] == k + 1] == [0.3]
        assert all(e["knobs"]["dropout"] != 0.3 for e in steps if e["step"] <= k)
        kw = edits["weight_decay"]["step"]
        after = [e["knobs"]["weight_decay"] for e in steps if e["step"] > kw]
        assert after and after[-1] < after[0]
        assert sum(1 for _, style in app.view.marks if "yellow" in style) == 2  # the charts mark both edits


@pytest.mark.parametrize("op,text,needle", [
    ("set", "abc", "'abc' is not a number"),
    ("set", "nan", "not a finite number"),
    ("set", "1.5", "above the allowed range [0, 1)"),
    ("scale", "-2", "must be >= 0"),
    ("schedule", "wobble end=0.1", "unknown kind 'wobble'"),
    ("schedule", "cosine speed=3", "cosine has no argument 'speed'"),
])
async def test_bad_input_in_the_dialog_shows_why_and_changes_nothing(tmp_path, op, text, needle):
    app = live_app(tmp_path, LONG)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.view.state is not None and app.view.state.step > 5)
        await pause_run(pilot, app)
        await select_knob(pilot, app, "dropout")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditDialog))
        if op != "set":
            await pilot.click(f"#op-{op}")
        await type_text(pilot, app, text)
        error = app.screen.query_one("#edit-error", Static)
        await until(pilot, lambda: needle in str(error.visual), what=f"error {needle!r}")
        assert app.screen.query_one("#edit-apply", Button).disabled
        await pilot.press("enter")  # Enter does not apply a refused edit
        await pilot.pause(0.2)
        assert isinstance(app.screen, EditDialog)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, EditDialog))
        stop_engine(app)
        assert not [e for e in log_of(app).events if e["type"] == "edit"]


async def test_revert_validate_checkpoint_help_and_palette(tmp_path):
    app = live_app(tmp_path, LONG)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.view.state is not None and app.view.state.step > 5)
        await pause_run(pilot, app)
        app.source.send("edit", knob="dropout", op="set", value=0.25).result(10)
        await until(pilot, lambda: knob_row(app, "dropout").edit == "set")
        await select_knob(pilot, app, "dropout")
        await pilot.press("r")
        await until(pilot, lambda: knob_row(app, "dropout").edit == "", what="reverted")
        await pilot.press("v")
        await until(pilot, lambda: "(manual)" in event_text(app), what="manual validation")
        await pilot.press("c")
        await until(pilot, lambda: "checkpoint" in event_text(app), what="checkpoint")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        shown = str(app.screen.query_one("#help-keys", Static).visual)
        for key in ("space", "e", "r", "v", "c", "ctrl+p", "q"):
            assert key in shown
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Validate now")  # the run is paused: the process is idle, keys are quick
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: event_text(app).count("(manual)") == 2, what="validation from the palette")
        stop_engine(app)
        types = [e["type"] for e in log_of(app).events]
        assert "checkpoint" in types and [e["op"] for e in log_of(app).events if e["type"] == "edit"] == ["set", "revert"]


async def quit_and_answer(pilot, app, key: str) -> None:
    """q while the run goes: the dialog asks; answer with `key`."""
    await until(pilot, lambda: app.view.state is not None and app.view.state.step > 5)
    await pilot.press("q")
    await until(pilot, lambda: isinstance(app.screen, QuitDialog))
    await pilot.press(key)


async def test_quit_asks_detach_stop_or_cancel_and_stop_ends_the_log(tmp_path):
    app = live_app(tmp_path, LONG)
    async with app.run_test(size=(80, 24)) as pilot:
        await quit_and_answer(pilot, app, "c")
        await until(pilot, lambda: not isinstance(app.screen, QuitDialog))
        assert app.source.engine.running and app.is_running
        await quit_and_answer(pilot, app, "s")
        await until(pilot, lambda: not app.is_running, what="app exit")
    assert app.source.engine.join(30) and not app.detached
    assert log_of(app).events[-1]["type"] == "end" and log_of(app).events[-1]["status"] == "stopped"
    assert any(e["type"] == "checkpoint" for e in log_of(app).events)


async def test_quit_then_detach_closes_the_screen_and_the_run_goes_on(tmp_path):
    app = live_app(tmp_path, LONG)
    async with app.run_test(size=(80, 24)) as pilot:
        await quit_and_answer(pilot, app, "d")
        await until(pilot, lambda: not app.is_running, what="app exit")
    engine = app.source.engine
    try:
        assert app.detached and engine.running
        step = engine.step
        deadline = time.monotonic() + 30
        while engine.step <= step and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.step > step  # still training with the screen gone
    finally:
        stop_engine(app)


async def test_crash_in_training_shows_in_the_ui_and_the_app_stays(tmp_path):
    def break_it(engine):
        forward = engine.parts.model.forward
        calls = {"n": 0}

        def failing(x):
            calls["n"] += 1
            if calls["n"] == 20:
                raise RuntimeError("CUDA error: device-side assert triggered")
            return forward(x)

        engine.parts.model.forward = failing

    app = live_app(tmp_path, LONG, before_start=break_it)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "CRASHED" in status_text(app), what="CRASHED")
        assert "error: RuntimeError: CUDA error" in event_text(app) and "traceback.txt" in event_text(app)
        await pilot.pause(0.3)
        assert app.is_running  # still open to inspect
        await pilot.press("q")  # nothing runs any more: quits without asking
        await until(pilot, lambda: not app.is_running)


async def test_non_finite_loss_pauses_and_says_so(tmp_path):
    app = live_app(tmp_path, LONG + ["optimizer.kind=SGD", "optimizer.lr=1e6", "schedules={}"])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "PAUSED" in status_text(app), what="pause on NaN")
        assert "non-finite loss" in event_text(app)
        stop_engine(app)


async def test_startup_error_exits_with_the_one_line_message(tmp_path):
    app = live_app(tmp_path, ["schedules.dropuot={kind='constant'}"])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: not app.is_running, what="exit")
    assert app.return_code == 2 and app.startup_error.startswith("no knob named 'dropuot'")


async def test_w_starts_and_stops_swa_b_updates_bn_and_the_average_is_charted(tmp_path):
    app = live_app(tmp_path, ["epochs=20000", "model.batchnorm=true", "ema.decay=0.9"])
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.view.state is not None and app.view.state.step > 0, what="steps")
        await pause_run(pilot, app)
        await pilot.press("w")
        await until(pilot, lambda: app.view.state.swa, what="SWA started")
        assert "SWA started (averaging every 1 epoch)" in event_text(app)
        assert "lr" in [c.title for c in app.view.charts()]  # the lr's SWA phase is an edit: its chart shows (and marks) it
        await pilot.press("space")
        await until(pilot, lambda: "SWA" in status_text(app), what="the SWA state")
        acc = lambda: next(c for c in app.view.charts() if c.key == "val acc")  # noqa: E731
        await until(pilot, lambda: "swa" in [label for label, _, _ in acc().series], what="the average evaluated")
        assert [label for label, _, _ in acc().series] == ["raw", "swa", "ema"]  # overlaid in one chart
        assert "swa " in app.charts.render().plain and "ema " in app.charts.render().plain
        await pilot.press("b")
        await until(pilot, lambda: "SWA update_bn" in event_text(app), what="update_bn")
        await until(pilot, lambda: "val swa" in event_text(app).split("SWA update_bn", 1)[1], what="its evaluation")
        await pilot.press("w")
        await until(pilot, lambda: not app.view.state.swa, what="SWA stopped")
        assert "SWA stopped (" in event_text(app) and "RUNNING" in status_text(app)
        stop_engine(app)


async def test_the_quit_dialog_shows_a_run_directory_with_markup_and_escapes_as_text():
    from textual.app import App

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(QuitDialog("schedtui attach runs/[red]evil[/red]\x1b]0;title\x07"))

    app = Host()
    async with app.run_test(size=(120, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, QuitDialog))
        await pilot.pause(0.1)
        shown = " ".join(screen_lines(app))
        assert "schedtui attach runs/[red]evil[/red]\\x1b]0;title\\x07 brings it back" in shown
