"""Start a run from a resolved config: build it, open its run directory and log, start the engine.

The one place both the headless display and the live UI get a running engine
from. Imports torch (through the engine) only when `start_run` is called, so a
caller can show a screen first and call it from a background thread. Must not
import textual or rich.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from pathlib import Path


@dataclass
class StartedRun:
    engine: object  # schedtui.engine.engine.Engine
    header: dict
    events: queue.SimpleQueue
    run_dir: Path


def start_run(cfg: dict, data_dir: str | Path, runs_dir: str | Path, start: bool = True,
              rerun=None, header: dict | None = None) -> StartedRun:
    """`rerun` (an `engine.Rerun`) and `header` (extra header fields, e.g. the source) come from `schedtui rerun`."""
    from schedtui.engine.build import build_run
    from schedtui.engine.engine import Engine
    from schedtui.engine.rundir import open_run

    parts = build_run(cfg, data_dir)
    extra = {"steps_per_epoch": parts.timing.steps_per_epoch,
             "knobs": {k: parts.schedules.describe(k) for k in parts.knobs}, **(header or {})}
    run_dir, log = open_run(runs_dir, cfg, parts.device, extra)
    engine = Engine(parts, log, run_dir, rerun)
    events = log.subscribe()
    if start:
        engine.start()
    return StartedRun(engine, log.header, events, run_dir)
