"""Shared helpers for UI tests: a tiny real run on the CPU behind the live app, and reading the screen."""

from __future__ import annotations

import re
import time

from schedtui.config import load_config
from schedtui.launch import start_run
from schedtui.ui.app import TrainApp
from schedtui.ui.source import LiveSource

TINY = ["device=cpu", "data.n_samples=2000", "data.batch_size=200", "model.hidden=[512, 512]"]  # steps spend their time in kernels, as real ones do


def live_app(tmp_path, sets=(), before_start=None, **launch) -> TrainApp:
    """The app over a real moons run; `before_start(engine)` may alter it before it starts."""
    cfg, _ = load_config("moons", [*TINY, *sets])

    def start():
        run = start_run(cfg, tmp_path / "data", tmp_path / "runs", start=False, **launch)
        if before_start:
            before_start(run.engine)
        run.engine.start()
        return run

    return TrainApp(LiveSource(start), refresh_hz=20)


async def until(pilot, pred, timeout: float = 30.0, what: str = "condition") -> None:
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def stop_engine(app: TrainApp) -> None:
    engine = app.source.engine
    if engine is not None and engine.running:
        engine.send("stop")
        engine.join(30)


async def type_text(pilot, app, text: str) -> None:
    """Type into the focused dialog's Input. (Pilot.press waits for the whole process to go idle, up
    to a second per key, which a live training thread never allows; inserting fires the same events.)"""
    from textual.widgets import Input

    app.screen.query_one(Input).insert_text_at_cursor(text)
    await pilot.pause()


async def pause_run(pilot, app) -> None:
    await pilot.press("space")
    await until(pilot, lambda: app.view.state.status == "paused", what="paused")


async def select_knob(pilot, app, knob: str) -> None:
    await until(pilot, lambda: knob in [r.knob for r in app.view.knob_rows()], what=f"knob row {knob}")
    app.table.select(knob)
    await pilot.pause()


def knob_row(app, knob: str):
    return next(r for r in app.view.knob_rows() if r.knob == knob)


def screen_lines(app) -> list[str]:
    """The screen as the terminal would show it now: every widget's current strips composed (the
    compositor's own render of what is drawn, not the model behind it)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def region_lines(app, widget) -> list[str]:
    """The part of the screen a widget's content covers (its border left out), as drawn."""
    r = widget.content_region
    return [line[r.x:r.x + r.width] for line in screen_lines(app)[r.y:r.y + r.height]]


def table_value_on_screen(app, knob: str) -> str | None:
    for line in region_lines(app, app.table):
        words = line.replace("▸", " ").split()
        if len(words) >= 2 and words[0] == knob:
            return words[1]
    return None


def latest_eval_step_on_screen(app) -> int:
    """The step of the latest validation the event list's first row shows (-1: none yet)."""
    lines = region_lines(app, app.event_log)
    m = re.search(r"@(\d+)", lines[0]) if lines else None
    return int(m[1]) if m else -1
