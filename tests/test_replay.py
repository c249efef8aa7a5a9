"""`schedtui replay`: the main screen over a recorded run, with a timeline cursor, playback and --follow."""

import json
import subprocess
import sys

import pytest

from engine_helpers import make_engine, run_to_end
from schedtui.cli import main
from schedtui.events import EventLog, read_log
from schedtui.events.timeline import Timeline
from schedtui.ui.replay_app import ReplayApp
from ui_helpers import until

SPE = 10


def header(epochs: int) -> dict:
    return {"run_id": "r1", "preset": "synthetic", "device": "cpu", "config": {"name": "synthetic", "epochs": epochs, "seed": 0},
            "steps_per_epoch": SPE, "knobs": {"lr": "cosine end=0 (step)", "dropout": "constant"}}


def emit_steps(log, first: int, last: int) -> None:
    """Steps first..last with the events a run writes around them; an edit of dropout at step 25."""
    for s in range(first, last + 1):
        if s == 26:
            log.emit("edit", 25, knob="dropout", op="set", value=0.3, old=0.1, new=0.3)
        log.emit("step", s, epoch=(s - 1) // SPE, loss=1.0 / s, knobs={"lr": 0.1 - s * 1e-4, "dropout": 0.3 if s > 25 else 0.1},
                 samples_per_s=100.0)
        if s % SPE == 0:
            log.emit("eval", s, split="val", model="raw", loss=2.0 / s, acc=s / 100, reason="epoch")
            log.emit("epoch", s, epoch=s // SPE - 1, epochs=6)
        if s == 40:
            log.emit("pause", 40, reason="user")
            log.emit("resume", 40)


def write_log(path, last: int = 60, end: bool = True):
    log = EventLog(path, header(6))
    emit_steps(log, 1, last)
    if end:
        log.emit("end", last, status="completed")
    log.close()
    return path


def table_value(app, knob: str) -> str:
    return next(r.value for r in app.view.knob_rows() if r.knob == knob)


def chart_series(app, key: str):
    return next(c for c in app.view.charts() if c.key == key).series[0][2]


async def test_cursor_keys_move_through_the_run_and_every_widget_follows(tmp_path):
    path = write_log(tmp_path / "events.jsonl")
    app = ReplayApp(Timeline(path), refresh_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.loading is None and app.view.cursor == 60, what="loaded, cursor at the end")
        assert "step 60/60" in str(app.status_bar.render())
        await pilot.press("home")
        assert app.view.cursor == 0
        await pilot.press("right", "right", "right")
        assert app.view.cursor == 3 and table_value(app, "lr") == "0.0997"
        await pilot.press("pagedown")
        assert app.view.cursor == 13
        await pilot.press("n")  # the next event: the edit at step 25
        assert app.view.cursor == 25 and "here: edit" in str(app.status_bar.render())
        assert table_value(app, "dropout") == "0.1"  # step 25 used the old value; the edit applies from 26
        assert next(r.schedule for r in app.view.knob_rows() if r.knob == "dropout").startswith("set 0.3 @25")
        assert app.view.entries[-1][3].strip().startswith("25 dropout 0.1→0.3")
        await pilot.press("right")
        assert table_value(app, "dropout") == "0.3"
        await pilot.press("n", "n")  # pause at 40, then the end at 60
        assert app.view.cursor == 60 and app.view.state.status == "completed"
        await pilot.press("N")
        assert app.view.cursor == 40 and "here: pause, resume" in str(app.status_bar.render())
        assert app.view.state.status == "running"  # paused and resumed at step 40: resumed is the last word
        await pilot.press("pageup", "left")
        assert app.view.cursor == 29
        assert chart_series(app, "loss").last == pytest.approx(1 / 29)
        assert chart_series(app, "val acc").values == [0.1, 0.2]  # evaluations up to the cursor only
        await pilot.press("end")
        assert app.view.cursor == 60


async def test_playback_runs_from_the_cursor_and_stops_at_the_end(tmp_path):
    path = write_log(tmp_path / "events.jsonl")
    app = ReplayApp(Timeline(path), refresh_hz=20, start=5)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.loading is None, what="loaded")
        assert app.view.cursor == 5
        await pilot.press("plus", "plus", "minus")  # 10x: compressed is an epoch (10 steps) a second at 1x
        assert "10x fast" in str(app.status_bar.render())
        await pilot.press("space")
        assert app.playing
        await until(pilot, lambda: not app.playing, timeout=10, what="playback to reach the end")
        assert app.view.cursor == 60
        await pilot.press("minus")  # 1x: ten steps a second, so a slow key press cannot carry it far
        await pilot.press("space")  # at the end, play starts over
        assert app.playing and app.view.cursor < 30  # from step 0 (ticks may have moved it on since)
        await pilot.press("space")
        assert not app.playing
        stopped_at = app.view.cursor
        await pilot.pause(0.3)
        assert app.view.cursor == stopped_at


async def test_follow_picks_up_what_a_live_run_appends(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, header(6))
    emit_steps(log, 1, 20)
    log.flush(wait=True)
    app = ReplayApp(Timeline(path), follow=True, refresh_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.loading is None and app.view.cursor == 20, what="the first 20 steps")
        assert "following" in str(app.status_bar.render())
        emit_steps(log, 21, 45)
        log.flush(wait=True)
        await until(pilot, lambda: app.view.cursor == 45, timeout=10, what="the cursor to follow the end")
        assert table_value(app, "dropout") == "0.3"
        await pilot.press("home")
        emit_steps(log, 46, 50)
        log.emit("end", 50, status="completed")
        log.close()
        await until(pilot, lambda: app.view.last_step == 50, timeout=10, what="the rest")
        assert app.view.cursor == 0  # a cursor moved away from the end stays where it was put


async def test_a_damaged_log_shows_what_it_can_and_says_what_it_skipped(tmp_path):
    path = write_log(tmp_path / "events.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[30] = b"\x00garbage\n"
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:15])  # and a torn last line
    app = ReplayApp(Timeline(path), refresh_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.loading is None, what="loaded")
        assert app.view.last_step == 60
        bar = str(app.status_bar.render())
        assert "3 log problems skipped" in bar  # the garbage line, the seq gap it leaves, the torn end
        assert any("line 31: skipped, not a valid event" in text for _, _, text in app.notice.history)  # on the notice line


def test_a_real_steered_run_replays_with_its_values(tmp_path):
    engine = make_engine(tmp_path, ["epochs=6", 'edits=[{step=12, knob="lr", op="set", value=0.002}]'])
    log = run_to_end(engine)
    tl = Timeline(engine.run_dir)
    tl.load()
    steps = [e for e in log.events if e["type"] == "step"]
    assert tl.last_step == steps[-1]["step"]
    from schedtui.ui.review import ReviewView

    view = ReviewView(tl)
    view.set_cursor(13)
    rows = {r[0]: r for r in view.knob_rows()}
    assert rows["lr"][1] == "0.002" and rows["lr"][2] == "set 0.002 @12" and rows["lr"][3] == "set"
    view.set_cursor(11)
    rows = {r[0]: r for r in view.knob_rows()}
    assert rows["lr"][3] == "" and rows["lr"][4] == "set @12"  # not in force yet: the next change
    assert view.state.step == 11 and view.state.knobs == steps[10]["knobs"]


def test_without_a_terminal_replay_prints_a_summary(tmp_path, capsys):
    write_log(tmp_path / "events.jsonl")
    assert main(["replay", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "run r1 (synthetic) on cpu: completed at step 60 of 60"
    assert any("dropout 0.1→0.3 set" in line for line in out) and any("paused (user)" in line for line in out)


@pytest.mark.parametrize("content, needle", [
    (None, "no such file"), (b"", "is empty"), (b"\x00\x01garbage\n", "not a schedtui event log"),
    (b'{"format": "asciicast", "version": 2}\n', "format 'asciicast'"),
    (b'{"format": "schedtui-events", "version": 7, "seq": 0, "type": "header"}\n', "newer schedtui"),
])
def test_replay_of_something_that_is_not_a_log_is_a_one_line_error(tmp_path, capsys, content, needle):
    path = tmp_path / "events.jsonl"
    if content is not None:
        path.write_bytes(content)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.startswith("schedtui:") and len(err.strip().splitlines()) == 1


def test_replay_never_imports_torch(tmp_path):
    path = write_log(tmp_path / "events.jsonl")
    code = ("import sys\nfrom schedtui.cli import main\nfrom schedtui.ui.replay_app import ReplayApp\n"
            f"assert main(['replay', {str(path)!r}]) == 0\nassert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_replay_reads_the_events_the_strict_reader_reads(tmp_path):
    path = write_log(tmp_path / "events.jsonl")
    tl = Timeline(path)
    tl.load()
    assert tl.events == [e for e in read_log(path).events if e["type"] != "step"]
    for line in path.read_text().splitlines()[1:]:
        ev = json.loads(line)
        if ev["type"] == "step":
            assert tl.step_event(ev["step"]) == ev


def test_real_time_playback_follows_the_run_clock(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [{"format": "schedtui-events", "version": 1, "seq": 0, "type": "header", "time": 0.0, **header(6)}]
    for s in range(1, 61):
        lines.append({"seq": s, "type": "step", "step": s, "time": s * 0.5 + (30.0 if s > 40 else 0.0), "epoch": (s - 1) // SPE,
                      "loss": 1.0, "knobs": {"lr": 0.1}})  # a 30 s pause after step 40
    path.write_text("".join(json.dumps(ev, separators=(",", ":")) + "\n" for ev in lines))
    tl = Timeline(path)
    tl.load()
    from schedtui.ui.review import ReviewView

    view = ReviewView(tl)
    assert view.time_at(20) == 10.0 and view.step_at(10.0) == 20
    assert view.step_at(35.0) == pytest.approx(40.0 + 15.0 / 30.5)  # crawls through the pause, in real time
