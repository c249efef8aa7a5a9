"""`schedtui rerun LOG`: re-execute a recorded run, applying its edits at the exact steps they applied.

The new run starts from the header's config and seed (the device the source ran
on, unless `--device`), with the source's edits as the config's `[[edits]]`, and
its manual validations and SWA starts, stops and update_bn, in the order it
applied them. It is pause-free (the
source's pauses change no value; a non-finite loss warns instead of pausing) and
ends where the source ended early (stopped, interrupted, or a log that stops
without an `end`). `--until STEP` ends it there headless, or pauses it there in
the UI so a person can branch: a live edit during a rerun also branches (the
source's later edits are dropped, with a warning). The new log's header names
its source. On the same machine kind and versions, a CPU rerun reproduces every
per-step loss and knob value bit for bit. torch is imported only when the run
starts (through `schedtui.launch`).
"""

from __future__ import annotations

import sys
from importlib import metadata

from schedtui.commands import command_parser
from schedtui.config.edits import logged_edits, planned_edit
from schedtui.config.schema import validate
from schedtui.errors import UserError
from schedtui.experiment import OWN_LOOP, load_factory
from schedtui.events import read_log
from schedtui.safe_text import visible

EPILOG = """\
examples:
  schedtui rerun runs/moons-20261121-193000           the same run again, edits and all
  schedtui rerun runs/moons-20261121-193000 --until 400 then steer it differently from step 400
  schedtui diff runs/moons-20261121-193000 runs/moons-20261121-194500   check it matched
"""


def build_parser():
    from schedtui.cli import add_run_options

    p = command_parser("rerun", "Re-execute a recorded run: same config and seed, every logged edit at its exact step.", EPILOG)
    p.add_argument("log", metavar="LOG", help="the source run's events.jsonl, or its run directory")
    p.add_argument("--until", type=int, metavar="STEP",
                   help="end after this many updates (headless), or pause there to branch (UI)")
    add_run_options(p, "the device the source ran on")
    return p


def plan_rerun(log, until: int | None, pause_at_until: bool):
    """(config, engine.Rerun fields, header fields, notes) for rerunning `log`; UserError when it can't."""
    header = log.header
    if not isinstance(header.get("config"), dict):
        raise UserError(f"{log.path}: the header has no config to rerun")
    if header["config"].get("experiment") == OWN_LOOP:
        load_factory(OWN_LOOP)  # says, in one line, why a run of an own loop cannot be re-executed
    cfg = validate({k: v for k, v in header["config"].items() if k != "edits"})
    cfg["edits"] = logged_edits(log.events)
    plan = []
    for ev in log.events:
        if ev["type"] == "edit" and ev.get("by") != "swa":  # starting SWA applies the lr's SWA phase again
            edit = planned_edit(ev)
            plan.append((edit.pop("step"), "edit", edit))
        elif ev["type"] == "eval" and ev.get("reason") == "manual":
            plan.append((ev["step"], "validate", {}))
        elif ev["type"] == "swa" and ev.get("op") in ("start", "stop", "update_bn"):
            plan.append((ev["step"], "swa", {"op": ev["op"]}))
    notes = []
    end = next((ev for ev in reversed(log.events) if ev["type"] == "end"), None)
    steps = [ev["step"] for ev in log.events if ev["type"] == "step"]
    stop_at, reason = None, ""
    if end is None:
        stop_at = steps[-1] if steps else 0
        reason = f"the source log ends at step {stop_at} without an end (still running, or killed)"
        notes.append(reason + "; rerunning to there")
    elif end.get("status") in ("stopped", "interrupted"):
        stop_at, reason = end["step"], f"the source run was {end['status']} at step {end['step']}"
    pause = False
    if until is not None:
        if until < 0:
            raise UserError(f"--until: {until} must be >= 0")
        if stop_at is None or until < stop_at:
            stop_at, reason, pause = until, f"rerun reached --until {until}", pause_at_until
    return cfg, {"plan": plan, "stop_at": stop_at, "stop_reason": reason, "pause_at_stop": pause}, notes


def version_notes(header: dict) -> list[str]:
    """Where this machine's versions differ from the source's (then bit-identical values are not expected)."""
    notes = []
    for name, dist in (("torch", "torch"), ("torchvision", "torchvision"), ("schedtui", "schedtui")):
        was = header.get("versions", {}).get(name)
        try:
            now = metadata.version(dist)
        except metadata.PackageNotFoundError:
            now = None
        if was and now and was.split("+")[0] != now.split("+")[0]:  # torch says 2.15.0+cu132, its metadata 2.15.0
            notes.append(f"{name} {now} here, {was} in the source: values may differ from the source's")
    return notes


def main(argv: list[str]) -> int:
    from schedtui.cli import run
    from schedtui.engine.engine import Rerun

    args = build_parser().parse_args(argv)
    log = read_log(args.log, strict=False)  # a damaged line is skipped, and said so
    for w in log.warnings:
        print(f"schedtui rerun: warning: {log.path}: {visible(w)}", file=sys.stderr)
    headless = args.headless or not (sys.stdout.isatty() and sys.stdin.isatty())
    cfg, rerun, notes = plan_rerun(log, args.until, pause_at_until=not headless)
    cfg["device"] = args.device or str(log.header.get("device", cfg["device"])).split(":")[0]
    for note in notes + version_notes(log.header):
        print(f"schedtui rerun: {visible(note)}", file=sys.stderr)
    source = {"log": str(log.path), "run_id": log.header.get("run_id"), "until": args.until}
    return run(cfg, args, rerun=Rerun(**rerun), header={"source": source})
