"""The replay screen where a log is damaged, hostile or still being written, and `?` in replay."""

import json

from schedtui.events import EventLog
from schedtui.events.timeline import Timeline
from schedtui.ui.app import TrainApp
from schedtui.ui.replay_app import ReplayApp
from schedtui.ui.screens import HelpScreen
from schedtui.ui.source import LogSource
from ui_helpers import region_lines, screen_lines, until

SPE = 10
OSC52 = "\x1b]52;c;cHduZWQ=\x07"  # writes the terminal's clipboard
TITLE = "\x1b]0;pwned\x07"  # sets the window title
CLEAR = "\x1b[2J"
LINK = "[link=file:///etc/passwd]click[/link]"


def write_log(path, steps: int = 60, end: bool = True, preset: str = "synthetic", knob: str = "dropout",
              warning: str = "lr was changed elsewhere") -> None:
    header = {"run_id": "r1", "preset": preset, "device": "cpu", "config": {"name": "synthetic", "epochs": 6, "seed": 0},
              "steps_per_epoch": SPE, "knobs": {"lr": "cosine end=0 (step)", knob: "constant"}}
    log = EventLog(path, header)
    for s in range(1, steps + 1):
        if s == 26:
            log.emit("edit", 25, knob=knob, op="set", value=0.3, old=0.1, new=0.3)
        log.emit("step", s, epoch=(s - 1) // SPE, loss=1.0 / s, knobs={"lr": 0.1 - s * 1e-4, knob: 0.3 if s > 25 else 0.1})
        if s % SPE == 0:
            log.emit("eval", s, split="val", model="raw", loss=2.0 / s, acc=s / 100, reason="epoch")
    log.emit("warning", steps, message=warning)
    log.emit("pause", steps, reason=f"non-finite loss {CLEAR}")
    if end:
        log.emit("end", steps, status="stopped", reason=f"user {TITLE}")
    log.close()


def assert_nothing_raw(app) -> None:
    """No control character reaches the terminal; markup is shown as text, not followed."""
    for line in screen_lines(app):
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in line), repr(line)


async def test_strings_from_a_hostile_log_are_shown_not_obeyed(tmp_path):
    path = tmp_path / "events.jsonl"
    write_log(path, preset=f"evil{OSC52}{LINK}", knob=f"drop{TITLE}out", warning=f"look {CLEAR}{LINK} {OSC52}")
    app = ReplayApp(Timeline(path), refresh_hz=20)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: app.loading is None, what="loaded")
        await pilot.press("n")  # the edit of the hostile knob: its row, chart and event line
        await pilot.pause(0.1)
        assert_nothing_raw(app)
        shown = "\n".join(screen_lines(app))
        assert "evil\\x1b]52;c;cHduZWQ=\\x07[link=file:///etc/passwd]click[/link]" in shown  # the preset, as it is
        assert "drop\\x1b]0;pwned\\x07out" in shown  # the knob's name in the table, its chart, its edit line
        await pilot.press("end")
        await pilot.pause(0.1)
        assert_nothing_raw(app)
        listed = " ".join(line.strip() for line in region_lines(app, app.event_log))
        assert "look \\x1b[2J[link=file:///etc/passwd]click[/link]" in listed and "\\x1b]0;pwned\\x07" in listed
    live = TrainApp(LogSource(*_events(path)))  # the live screen shows the same strings the same way
    async with live.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        assert_nothing_raw(live)
        assert "paused at step 60: non-finite loss \\x1b[2J" in live.notice.history[-2][2]


def _events(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return lines[0], lines[1:]


async def test_a_changed_byte_in_a_step_line_is_said_in_one_line_not_loading_forever(tmp_path):
    path = tmp_path / "events.jsonl"
    write_log(path, steps=400)
    lines = path.read_bytes().split(b"\n")
    k = next(i for i, line in enumerate(lines) if b'"step":200,' in line and b'"type":"step"' in line)
    lines[k] = lines[k].replace(b'"loss":', b'"loss"x', 1)  # one byte
    path.write_bytes(b"\n".join(lines))
    app = ReplayApp(Timeline(path), refresh_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.loading is None, timeout=10, what="the load to end, one way or the other")
        status = " ".join(region_lines(app, app.status_bar))
        assert "loading" not in status
        skipped = len(app.timeline.warnings)
        assert (app.load_error and "could not read it all" in status) or (skipped and "skipped" in status)
        assert_nothing_raw(app)


async def test_follow_says_when_the_run_has_ended_and_help_opens_in_replay(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, {"run_id": "r1", "preset": "synthetic", "device": "cpu", "config": {"epochs": 6},
                          "steps_per_epoch": SPE, "knobs": {"lr": "constant"}})
    for s in range(1, 21):
        log.emit("step", s, epoch=(s - 1) // SPE, loss=1.0 / s, knobs={"lr": 0.1})
    log.flush(wait=True)
    app = ReplayApp(Timeline(path), follow=True, refresh_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.loading is None and app.view.cursor == 20, what="the first steps")
        assert "following" in screen_lines(app)[0]
        log.emit("step", 21, epoch=2, loss=0.05, knobs={"lr": 0.1})
        log.emit("end", 21, status="completed")
        log.close()
        await until(pilot, lambda: app.view.cursor == 21, timeout=10, what="the end read")
        await pilot.pause(0.1)
        assert "run ended" in screen_lines(app)[0] and "following" not in screen_lines(app)[0]
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        assert "next / previous event" in str(app.screen.query_one("#help-keys").visual)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), what="help closed")
