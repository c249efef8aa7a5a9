"""Your own loop keeps its main thread: `with schedtui.monitor(...)` on a terminal opens the live screen in a child
process attached to the run; what the loop prints goes to RUN_DIR/output.log, each line with its step, and the
screen's output pane (o) shows it."""

import re

from engine_helpers import of_type
from schedtui.events import read_log
from test_cli_tty import run_in_pty

SCRIPT = """
import torch
from torch import nn
import schedtui

torch.manual_seed(0)
model = nn.Linear(2, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
with schedtui.monitor(model, opt, epochs=60, steps_per_epoch=50, runs_dir={runs!r}) as mon:
    for epoch in range(60):
        for i in range(50):
            loss = model(torch.randn(8, 2)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.step(loss)
        print(f"my loop says: epoch {{epoch}} done", flush=True)
        mon.epoch()
print("after the loop")
"""


def test_with_monitor_on_a_terminal_shows_the_screen_and_keeps_the_loops_output(tmp_path):
    runs = tmp_path / "runs"
    script = tmp_path / "loop.py"
    script.write_text(SCRIPT.format(runs=str(runs)))
    # (a fast machine ends the run before the screen is up); o shows the loop's output, in the screen
    status, tail = run_in_pty([], [("DONE", ["o"]), ("my loop says: epoch 59 done", ["q"])], timeout=120,
                              python_args=[str(script)])
    assert status == 0, tail[-2000:]
    assert b"after the loop" in tail
    (run,) = runs.iterdir()
    log = read_log(run / "events.jsonl")
    assert len(of_type(log, "step")) == 3000 and of_type(log, "end")[0]["status"] == "completed"
    lines = (run / "output.log").read_text().splitlines()
    said = [ln for ln in lines if "my loop says" in ln]
    assert len(said) == 60 and re.fullmatch(r"\[step 50\] my loop says: epoch 0 done", said[0])
