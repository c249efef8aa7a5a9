"""Start a run from a resolved config: build it, open its run directory and log, start the engine.

The one place both the headless display and the live UI get a running engine
from, fresh or resumed from a checkpoint (`resume`: the run's directory and
checkpoint; the log is continued, not created, and gets a `resume` event that
names the checkpoint). Imports torch (through the engine) only when `start_run`
is called, so a caller can show a screen first and call it from a background
thread. Must not import textual or rich.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass
class StartedRun:
    engine: object  # schedtui.engine.engine.Engine
    header: dict
    events: queue.SimpleQueue
    run_dir: Path
    control: object = None  # schedtui.control.server.ControlServer, when the run has a control socket


@dataclass
class ResumeFrom:
    """What `schedtui resume` found: the run to continue and the checkpoint to continue it from."""

    run_dir: Path
    checkpoint: Path
    header: dict  # the log's header
    last_step: int  # the last step the log records (steps after the checkpoint's are superseded)


def start_run(cfg: dict, data_dir: str | Path, runs_dir: str | Path, start: bool = True,
              rerun=None, header: dict | None = None, resume: ResumeFrom | None = None,
              control: bool = False) -> StartedRun:
    """`rerun` (an `engine.Rerun`) and `header` (extra header fields, e.g. the source) come from `schedtui rerun`.
    `control`: serve the run's control socket (`schedtui.control`) until it ends; a run that cannot have one
    (no private directory for it) goes on without, with a warning event.

    The run is built on a short-lived thread of its own, whatever thread calls this. Building runs
    torch ops (the model's init, the data on the device); the thread that runs them keeps an OpenMP
    thread pool for as long as it lives. Left on the caller's long-lived thread, that pool sits beside
    the training thread's own, and with more OpenMP threads than cores libgomp stops spinning and the
    training thread's parallel regions wait on wake-ups (measured about 9% slower on the CNN in
    benchmarks/overhead.py). The thread's pool goes when it ends."""
    box: dict = {}

    def build() -> None:
        try:
            box["run"] = run = _start_run(cfg, data_dir, runs_dir, start, rerun, header, resume)
            dist = getattr(getattr(run.engine, "core", None), "dist", None)
            if control and (dist is None or dist.main):  # a data-parallel job's socket is rank 0's
                run.control = serve(run.engine, run.run_dir)
        except BaseException as e:  # re-raised on the caller's thread
            box["error"] = e

    thread = threading.Thread(target=build, name="schedtui-build", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["run"]


def serve(engine, run_dir: Path):
    """Start the run's control socket (the one place a run gets one); None, with a warning event, when it can't."""
    from schedtui.control.server import ControlServer

    server = ControlServer(engine, run_dir)
    if server.start():
        return server
    engine.log.emit("warning", engine.step, message=server.error)
    return None


def _start_run(cfg: dict, data_dir, runs_dir, start: bool, rerun, header: dict | None, resume: ResumeFrom | None) -> StartedRun:
    from schedtui.engine import ddp_run
    from schedtui.engine.build import build_run
    from schedtui.engine.describe import header_fields
    from schedtui.engine.engine import Engine
    from schedtui.engine.rundir import open_run

    dist, cfg = ddp_run.join(cfg)  # under torchrun: every rank runs rank 0's config
    parts = build_run(cfg, data_dir)
    if resume is not None:
        return _resume(parts, resume, start, dist)
    extra = {**header_fields(parts), **ddp_run.header_fields(dist), "data_dir": str(Path(data_dir).expanduser().absolute()),
             **(header or {})}
    run_dir, log = ddp_run.shared_log(dist, lambda: open_run(runs_dir, cfg, parts.device, extra))
    engine = Engine(parts, log, run_dir, rerun)
    events = log.subscribe()
    if start:
        engine.start()
    return StartedRun(engine, log.header, events, run_dir)


def _resume(parts, r: ResumeFrom, start: bool, dist=None) -> StartedRun:
    from schedtui.engine import checkpoint, ddp_run
    from schedtui.engine.engine import Engine
    from schedtui.errors import UserError
    from schedtui.events import EventLog

    state = checkpoint.read(r.checkpoint, parts.device)
    if state.get("run_id") != r.header.get("run_id"):
        raise UserError(f"{r.checkpoint}: a checkpoint of run {state.get('run_id')}, not of this run ({r.header.get('run_id')})")
    if state["step"] > r.last_step:  # the log lost steps the checkpoint has trained: never resume over a hole
        earlier = [c.name for c in checkpoint.listed(r.run_dir) if checkpoint.step_of(c) <= r.last_step]
        way_out = f"resume from an earlier one with --from {earlier[-1]}" if earlier else "no earlier checkpoint is in the log"
        raise UserError(f"{r.checkpoint.name} is at step {state['step']} but the log ends at step {r.last_step}: "
                        f"steps {r.last_step + 1}..{state['step']} are not in the log; {way_out}")
    _, log = ddp_run.shared_log(dist, lambda: (r.run_dir, EventLog.reopen(
        r.run_dir / "events.jsonl", flush_interval=parts.cfg["engine"]["flush_interval"])))
    try:
        engine = Engine(parts, log, r.run_dir)
        checkpoint.restore(engine.core, state, r.checkpoint)
    except BaseException:
        log.close()
        raise
    events = log.subscribe()
    step = state["step"]
    where = {"epoch": state["position"]["epoch"], "batch": state["position"]["batch"]}
    superseded = {"superseded": [step + 1, r.last_step]} if r.last_step > step else {}
    log.emit("resume", step, checkpoint=str(r.checkpoint), **where, **superseded)
    if log.repaired:
        log.emit("warning", step, message=f"resume: {log.repaired}")
    if superseded:
        log.emit("warning", step, message=f"resume: steps {step + 1}..{r.last_step} logged before the checkpoint's "
                                          f"step {step} was resumed are superseded by the steps that follow")
    log.flush()
    if start:
        engine.start()
    return StartedRun(engine, log.header, events, r.run_dir)
