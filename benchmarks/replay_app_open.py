"""How long `schedtui replay` takes to show a whole million-step log: process start to loaded and drawn.

Runs the replay app headless (Textual's `run_test`) in fresh interpreters over a
log (a path, or one written by `replay_open.py --keep`), and reports the median
of the wall times from interpreter start (imports included) to the first frame
with the whole log loaded and the cursor at its last step. The issue's target is
under two seconds for a million steps.

    python benchmarks/replay_app_open.py LOG [--runs 3] [--budget 2.0]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CHILD = """
import asyncio, sys, time
from schedtui.events.timeline import Timeline
from schedtui.ui.replay_app import ReplayApp

async def main():
    app = ReplayApp(Timeline(sys.argv[1]))
    async with app.run_test(size=(100, 30)) as pilot:
        while app.loading is not None or app.view.cursor < app.view.last_step or app.view.last_step == 0:
            await pilot.pause(0.005)
        await pilot.pause()
        print(app.view.last_step)

asyncio.run(main())
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("log")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--budget", type=float, default=2.0, help="seconds; exit 1 when the median is over it")
    args = p.parse_args()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, args.log], capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - t0
    med = statistics.median(times)
    print(f"steps {out.stdout.strip()}: open to loaded and drawn, median of {args.runs}: {med:.2f} s "
          f"(runs {', '.join(f'{t:.2f}' for t in times)}; a bare interpreter start: {bare:.2f} s)")
    return 0 if med <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
