"""What the training prints while the live screen has the terminal: kept in RUN_DIR/output.log, each line with
the step it came at (`capture.OutputCapture`, in the training's process), and shown (escaped) in the output pane
that `o` opens in the charts' place. The whole path, `schedtui` in a terminal, is in test_cli_tty."""

import subprocess
import sys

from ui_helpers import live_app, region_lines, screen_lines, stop_engine, until

LONG = ["epochs=20000"]


def printing(engine):
    """The user's model prints now and then (as real training code does), markup and an escape among it; the
    lines land in RUN_DIR/output.log as the CLI's capture writes them."""
    forward = engine.parts.model.forward
    calls = {"n": 0}
    out = open(engine.run_dir / "output.log", "ab", buffering=0)

    def forward_that_prints(x):
        calls["n"] += 1
        if calls["n"] % 40 == 0:
            out.write(f"[step {engine.step}] forward call {calls['n']} [bold]not markup[/bold] \x1b[31m\n".encode())
        return forward(x)

    engine.parts.model.forward = forward_that_prints


def output_lines(app) -> list[str]:
    path = app.source.run_dir / "output.log"
    return path.read_text().splitlines() if path.exists() else []


async def test_o_shows_what_the_training_printed_escaped_in_the_charts_place(tmp_path):
    app = live_app(tmp_path, LONG, before_start=printing)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.source.run_dir is not None and len(output_lines(app)) >= 3, what="prints in output.log")
        await until(pilot, lambda: "o shows the training's output" in "\n".join(screen_lines(app)), what="the hint that output came")
        assert not app.output.display and app.charts.display
        await pilot.press("o")
        await until(pilot, lambda: any("forward call" in ln for ln in region_lines(app, app.output)), what="the pane")
        assert not app.charts.display  # in the charts' place
        shown = [ln for ln in region_lines(app, app.output) if "forward call" in ln]
        assert "[bold]not markup[/bold] \\x1b[31m" in shown[0]  # the text as printed, escaped: no style, no escape code
        await pilot.press("o")
        await until(pilot, lambda: app.charts.display and not app.output.display, what="the charts back")
        stop_engine(app)


def test_prints_before_the_run_has_a_directory_are_kept_and_never_lost(tmp_path):
    code = f"""
import sys
from schedtui.capture import OutputCapture
where, step = {{"path": None}}, [0]
cap = OutputCapture(lambda: where["path"], lambda: step[0])
print("loading my data")  # while the run is being built: held
where["path"], step[0] = {str(tmp_path / 'output.log')!r}, 12
print("a warning", file=sys.stderr)
step[0] = 13
sys.stdout.write("no newline yet")
cap.close()
never = OutputCapture(lambda: None, lambda: 0)  # a run that never started: the lines go to stderr at the end
print("factory says hi")
never.close()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "output.log").read_text().splitlines() == [
        "[step 0] loading my data", "[step 12] a warning", "[step 13] no newline yet"]
    assert done.stderr == "[step 0] factory says hi\n" and done.stdout == ""


def test_an_own_loops_capture_keeps_prints_bytes_descriptor_writes_and_child_processes(tmp_path):
    code = f"""
import os, subprocess, sys
from schedtui.capture import OutputCapture
step = [3]
cap = OutputCapture({str(tmp_path / 'output.log')!r}, lambda: step[0])
print("a print")
sys.stdout.buffer.write(b"bytes by hand\\n")
step[0] = 4
os.write(2, b"C code on fd 2\\n")
subprocess.run([sys.executable, "-c", "print('a child process')"])
sys.stderr.write("no newline at the end")
cap.close()
print("back on the terminal")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "back on the terminal\n" and done.stderr == ""
    lines = (tmp_path / "output.log").read_text().splitlines()
    assert lines[:2] == ["[step 3] a print", "[step 3] bytes by hand"]  # tagged when written
    assert set(lines[2:]) == {"[step 4] C code on fd 2", "[step 4] a child process", "[step 4] no newline at the end"}


async def test_o_on_a_run_that_printed_nothing_says_so(tmp_path):
    app = live_app(tmp_path, LONG)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.view.state is not None and app.view.state.step > 5)
        await pilot.press("o")
        await until(pilot, lambda: "printed nothing yet" in " ".join(region_lines(app, app.notice)), what="the notice")
        assert app.output.display and not app.charts.display
        stop_engine(app)
