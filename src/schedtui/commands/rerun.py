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

A log is data: the experiment its header names (a factory module) is imported
only with `--experiment module:function` equal to the log's, or a yes on a
terminal (`experiment.consent_to_logged`). The header's name becomes the new run
directory's name made safe (`config.schema.safe_name`), inside `--runs-dir`.
"""

from __future__ import annotations

import sys
from importlib import metadata

from schedtui.commands import command_parser
from schedtui.config.edits import planned_edit, validate_edits
from schedtui.config.schema import MAX_STEPS, F, safe_name, shown, validate
from schedtui.errors import UserError
from schedtui.experiment import OWN_LOOP, TARGET_HELP, consent_to_logged, load_factory
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
    p.add_argument("--experiment", metavar="MODULE:FUNCTION",
                   help=f"allow importing the experiment the log names ({TARGET_HELP}); must equal the log's")
    add_run_options(p, "the device the source ran on")
    return p


def plan_rerun(log, until: int | None, pause_at_until: bool):
    """(config, engine.Rerun fields, header fields, notes) for rerunning `log`; UserError when it can't."""
    header = log.header
    if not isinstance(header.get("config"), dict):
        raise UserError(f"{log.path}: the header has no config to rerun")
    if header["config"].get("experiment") == OWN_LOOP:
        load_factory(OWN_LOOP)  # says, in one line, why a run of an own loop cannot be re-executed
    notes = []
    config = {k: v for k, v in header["config"].items() if k != "edits"}
    name = safe_name(config.get("name"))
    if config.get("name") != name:  # the source's name was not typed here: made safe, not refused
        notes.append(f"the source's name {shown(config.get('name'))} cannot name a run directory; "
                     f"this rerun is named {name!r}")
    config["name"] = name
    cfg = validate(config)
    plan = []
    for ev in log.events:
        if ev["type"] == "edit" and ev.get("by") != "swa":  # starting SWA applies the lr's SWA phase again
            edit = _logged(log, ev, lambda: validate_edits([planned_edit(ev)])[0])
            plan.append((edit.pop("step"), "edit", edit))
        elif ev["type"] == "eval" and ev.get("reason") == "manual":
            plan.append((_step(log, ev), "validate", {}))
        elif ev["type"] == "swa" and ev.get("op") in ("start", "stop", "update_bn"):
            plan.append((_step(log, ev), "swa", {"op": ev["op"]}))
    if [s for s, _, _ in plan] != sorted(s for s, _, _ in plan):
        raise UserError(f"{log.path}: its edits, validations and SWA events go back in steps; it cannot be rerun")
    cfg["edits"] = [{"step": s, **a} for s, c, a in plan if c == "edit"]
    end = next((ev for ev in reversed(log.events) if ev["type"] == "end"), None)
    steps = [_step(log, ev) for ev in log.events if ev["type"] == "step"]
    stop_at, reason = None, ""
    if end is None:
        stop_at = steps[-1] if steps else 0
        reason = f"the source log ends at step {stop_at} without an end (still running, or killed)"
        notes.append(reason + "; rerunning to there")
    elif end.get("status") in ("stopped", "interrupted"):
        stop_at = _step(log, end)
        reason = f"the source run was {end['status']} at step {stop_at}"
    pause = False
    if until is not None:
        if until < 0:
            raise UserError(f"--until: {until} must be >= 0")
        if stop_at is None or until < stop_at:
            stop_at, reason, pause = until, f"rerun reached --until {until}", pause_at_until
    return cfg, {"plan": plan, "stop_at": stop_at, "stop_reason": reason, "pause_at_stop": pause}, notes


def _logged(log, ev: dict, check):
    """`check()`, its UserError (or a missing field) said as a problem of the event at `ev`'s seq."""
    try:
        return check()
    except (UserError, KeyError) as e:
        why = f"no {e.args[0]!r}" if isinstance(e, KeyError) else str(e)
        raise UserError(f"{log.path}: its {visible(ev.get('type'))} event (seq {visible(ev.get('seq'))}) cannot be "
                        f"rerun: {why}") from None


def _step(log, ev: dict) -> int:
    return _logged(log, ev, lambda: F(int, lo=0, hi=MAX_STEPS).check("step", ev.get("step")))


def logged_device(header: dict, default: str, source: str) -> str:
    """The device type a header records (`cuda:0` -> cuda), or `default` when it records none; UserError when
    it records something else than a device schedtui runs on."""
    device = header.get("device", default)
    kind = device.split(":")[0] if isinstance(device, str) else None
    if kind not in ("auto", "cpu", "cuda", "mps"):
        raise UserError(f"{source}: the header's device {shown(device)} is not cpu, cuda or mps; give --device")
    return kind


def version_notes(header: dict) -> list[str]:
    """Where this machine's versions differ from the source's (then bit-identical values are not expected)."""
    notes = []
    versions = header.get("versions")
    for name, dist in (("torch", "torch"), ("torchvision", "torchvision"), ("schedtui", "schedtui")):
        was = versions.get(name) if isinstance(versions, dict) else None
        if not isinstance(was, str):
            continue
        try:
            now = metadata.version(dist)
        except metadata.PackageNotFoundError:
            now = None
        if was and now and was.split("+")[0] != now.split("+")[0]:  # torch says 2.15.0+cu132, its metadata 2.15.0
            notes.append(f"{name} {now} here, {was} in the source: values may differ from the source's")
    return notes


def main(argv: list[str]) -> int:
    from schedtui.cli import run

    args = build_parser().parse_args(argv)
    log = read_log(args.log, strict=False)  # a damaged line is skipped, and said so
    for w in log.warnings:
        print(f"schedtui rerun: warning: {log.path}: {visible(w)}", file=sys.stderr)
    headless = args.headless or not (sys.stdout.isatty() and sys.stdin.isatty())
    cfg, rerun, notes = plan_rerun(log, args.until, pause_at_until=not headless)
    cfg["device"] = args.device or logged_device(log.header, cfg["device"], str(log.path))
    consent_to_logged(cfg.get("experiment"), args.experiment, str(log.path), "rerun it")
    from schedtui.engine.engine import Rerun  # torch: only once the rerun is going to start
    for note in notes + version_notes(log.header):
        print(f"schedtui rerun: {visible(note)}", file=sys.stderr)
    source = {"log": str(log.path), "run_id": log.header.get("run_id"), "until": args.until}
    return run(cfg, args, rerun=Rerun(**rerun), header={"source": source})
