"""`schedtui resume RUN_DIR`: continue a stopped, interrupted or killed run from its checkpoint.

Reads the run's log header (its config, seed and device), rebuilds the run,
loads the checkpoint (`--from`, else the one `checkpoints/latest` names, else the
highest step) and trains on from there, in the UI or headless, appending to the
same `events.jsonl`: a `resume` event (its `step`, `checkpoint`, `epoch` and
`batch`) marks where. When the log records steps after the checkpoint's (the
process was killed without a final checkpoint), a warning says those are
superseded, and the `resume` event carries `superseded: [first, last]`. On the
same machine, a CPU run stopped and resumed matches one that ran straight
through, bit for bit.

Refused with a one-line error, with nothing touched: no such run directory, no
checkpoint, a run that completed, a checkpoint of another format version, or one
that does not fit the run (another run, config or model). torch is imported only
when the run starts (through `schedtui.launch`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from schedtui.commands import command_parser
from schedtui.config.schema import validate
from schedtui.errors import UserError
from schedtui.events import read_log
from schedtui.safe_text import visible

EPILOG = """\
examples:
  schedtui resume runs/moons-20261121-193000                 on from its latest checkpoint
  schedtui resume runs/moons-20261121-193000 --headless      the same, without the full-screen UI
  schedtui resume runs/moons-20261121-193000 --from step-00000400.pt

A run writes a checkpoint when it stops (q, Ctrl-C, SIGTERM, SIGHUP), on `c`, and
every --checkpoint-every N epochs, in RUN_DIR/checkpoints/.
"""


def build_parser():
    from schedtui.cli import add_run_options

    p = command_parser("resume", "Continue a stopped, interrupted or killed run from its checkpoint, in the same log.", EPILOG)
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run's directory (or its events.jsonl)")
    p.add_argument("--from", dest="checkpoint", metavar="CHECKPOINT",
                   help="a checkpoint file, or a file name in RUN_DIR/checkpoints (default: the latest)")
    add_run_options(p, "the device the run used", runs_dir=False)
    return p


def plan_resume(run_dir: str, explicit: str | None) -> tuple[dict, object]:
    """(config, launch.ResumeFrom) for resuming `run_dir`; UserError when it cannot be resumed."""
    from schedtui.engine.checkpoint import find
    from schedtui.launch import ResumeFrom

    d = Path(run_dir).expanduser()
    if d.is_file() and d.name == "events.jsonl":
        d = d.parent
    if not d.is_dir():
        raise UserError(f"{d}: no such run directory")
    log = read_log(d, strict=False)  # a damaged line is skipped, and said so
    for w in log.warnings:
        print(f"schedtui resume: warning: {log.path}: {visible(w)}", file=sys.stderr)
    if not isinstance(log.header.get("config"), dict):
        raise UserError(f"{log.path}: the header has no config to resume")
    end = next((ev for ev in reversed(log.events) if ev["type"] in ("end", "resume") and
                (ev["type"] == "end" or "checkpoint" in ev)), None)
    if end is not None and end["type"] == "end" and end.get("status") == "completed":
        raise UserError(f"{d}: the run completed at step {end['step']}; there is nothing to resume")
    ck = find(d, explicit)
    if ck is None:
        raise UserError(f"{d}: no checkpoint to resume from in {d / 'checkpoints'} (a run writes one when it stops, "
                        "on c, and every --checkpoint-every N epochs)")
    cfg = validate(dict(log.header["config"]))
    steps = [ev["step"] for ev in log.events if ev["type"] == "step"]
    return cfg, ResumeFrom(run_dir=d, checkpoint=ck, header=log.header, last_step=steps[-1] if steps else 0)


def main(argv: list[str]) -> int:
    from schedtui.cli import run

    args = build_parser().parse_args(argv)
    cfg, resume = plan_resume(args.run_dir, args.checkpoint)
    cfg["device"] = args.device or str(resume.header.get("device", cfg["device"])).split(":")[0]
    if args.data_dir is None:
        args.data_dir = resume.header.get("data_dir") or _default_data_dir()
    return run(cfg, args, resume=resume)


def _default_data_dir() -> str:
    from schedtui.cli import DEFAULT_DATA_DIR

    return DEFAULT_DATA_DIR
