"""What the training prints while the live screen has the terminal: kept in RUN_DIR/output.log, each line with
the step it came at, and shown (escaped) in the output pane that `o` opens in the charts' place."""

import re

from schedtui.capture import PrintSink
from ui_helpers import live_app, region_lines, screen_lines, stop_engine, until

LONG = ["epochs=20000"]


def printing(engine):
    """The user's model prints now and then (as real training code does), markup and an escape among it."""
    forward = engine.parts.model.forward
    calls = {"n": 0}

    def forward_that_prints(x):
        calls["n"] += 1
        if calls["n"] % 40 == 0:
            print(f"forward call {calls['n']} [bold]not markup[/bold] \x1b[31m")
        return forward(x)

    engine.parts.model.forward = forward_that_prints


def output_lines(app) -> list[str]:
    path = app.source.run_dir / "output.log"
    return path.read_text().splitlines() if path.exists() else []


async def test_prints_go_to_output_log_with_their_step_and_o_shows_them(tmp_path):
    app = live_app(tmp_path, LONG, before_start=printing)
    app.prints = PrintSink(lambda: None if app.source.run_dir is None else app.source.run_dir / "output.log",
                           lambda: 0 if app.source.engine is None else app.source.engine.step)
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
    app.prints.close()
    lines = output_lines(app)
    said = [ln for ln in lines if "forward call" in ln]
    assert said and all(re.fullmatch(r"\[step \d+\] forward call \d+ \[bold\]not markup\[/bold\] \x1b\[31m", ln) for ln in said)
    steps = [int(ln.split("]")[0][6:]) for ln in said]
    assert steps == sorted(steps) and steps[-1] > steps[0] > 0  # each with the step of its moment


class Printed:
    """What Textual hands a print-capture target (`events.Print`)."""

    def __init__(self, text: str, stderr: bool = False):
        self.text, self.stderr = text, stderr


def test_prints_before_the_run_has_a_directory_are_kept_and_never_lost(tmp_path, capsys):
    where, step = {"path": None}, {"n": 0}
    sink = PrintSink(lambda: where["path"], lambda: step["n"])
    sink.post_message(Printed("loading my data\n"))  # while the run is being built: held
    where["path"], step["n"] = tmp_path / "output.log", 12
    sink.post_message(Printed("a warning\n", stderr=True))
    step["n"] = 13
    sink.post_message(Printed("no newline yet"))
    sink.close()
    assert (tmp_path / "output.log").read_text().splitlines() == [
        "[step 0] loading my data", "[step 12] a warning", "[step 13] no newline yet"]
    never = PrintSink(lambda: None, lambda: 0)  # a run that never started: the lines go to stderr at the end
    never.post_message(Printed("factory says hi\n"))
    never.close()
    assert capsys.readouterr().err == "[step 0] factory says hi\n"


def test_an_own_loops_capture_keeps_prints_bytes_descriptor_writes_and_child_processes(tmp_path):
    import subprocess
    import sys

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
