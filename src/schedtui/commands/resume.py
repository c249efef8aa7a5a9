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

A run directory is data too: the experiment its log names is imported only with
`--experiment module:function` equal to the log's, or a yes on a terminal
(`experiment.consent_to_logged`); and resume refuses a directory where a path it
writes (events.jsonl, traceback.txt, config.toml, checkpoints/ and anything in
it) is a link leading outside the run directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

from schedtui.commands import command_parser
from schedtui.commands.rerun import logged_device
from schedtui.config.schema import validate
from schedtui.errors import UserError
from schedtui.events import read_log
from schedtui.experiment import TARGET_HELP, consent_to_logged
from schedtui.safe_text import visible

WRITTEN = ("events.jsonl", "traceback.txt", "config.toml", "checkpoints")  # what a resumed run may write to

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
    p.add_argument("--experiment", metavar="MODULE:FUNCTION",
                   help=f"allow importing the experiment the run's log names ({TARGET_HELP}); must equal the log's")
    add_run_options(p, "the device the run used", runs_dir=False)
    return p


def plan_resume(run_dir: str, explicit: str | None, experiment: str | None = None) -> tuple[dict, object]:
    """(config, launch.ResumeFrom) for resuming `run_dir`; UserError when it cannot be resumed.
    `experiment`: the --experiment the user named (see `experiment.consent_to_logged`)."""
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
        raise UserError(f"{d}: the run completed at step {visible(end.get('step'))}; there is nothing to resume")
    check_inside(d)
    ck = find(d, explicit)
    if ck is None:
        raise UserError(f"{d}: no checkpoint to resume from in {d / 'checkpoints'} (a run writes one when it stops, "
                        "on c, and every --checkpoint-every N epochs)")
    cfg = validate(dict(log.header["config"]))
    consent_to_logged(cfg.get("experiment"), experiment, str(log.path), "resume the run")
    steps = [ev["step"] for ev in log.events if ev["type"] == "step" and isinstance(ev.get("step"), int)]
    return cfg, ResumeFrom(run_dir=d, checkpoint=ck, header=log.header, last_step=steps[-1] if steps else 0)


def check_inside(run_dir: Path) -> None:
    """UserError when a path resume writes to, inside `run_dir`, is a link that leads out of it."""
    root = run_dir.resolve()

    def check(paths) -> None:
        for p in paths:
            if p.is_symlink() and not p.resolve().is_relative_to(root):
                raise UserError(f"{p}: a link to {visible(str(p.resolve()))}, outside the run directory; resume "
                                f"writes there, so it refuses (replace the link by a folder or file of its own)")

    check(run_dir / name for name in WRITTEN)
    folder = run_dir / "checkpoints"
    if folder.is_dir():
        check(sorted(folder.iterdir()))  # latest, step-N.pt and their .tmp: written by name, following links


def main(argv: list[str]) -> int:
    from schedtui.cli import run

    args = build_parser().parse_args(argv)
    cfg, resume = plan_resume(args.run_dir, args.checkpoint, args.experiment)
    cfg["device"] = args.device or logged_device(resume.header, cfg["device"], str(resume.run_dir / "events.jsonl"))
    if args.data_dir is None:
        logged = resume.header.get("data_dir")
        args.data_dir = logged if isinstance(logged, str) and logged and "\x00" not in logged else _default_data_dir()
    return run(cfg, args, resume=resume)


def _default_data_dir() -> str:
    from schedtui.cli import DEFAULT_DATA_DIR

    return DEFAULT_DATA_DIR
