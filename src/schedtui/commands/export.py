"""`schedtui export LOG (--csv FILE | --preset FILE.toml) [--force]`: a run's log as other files.

`--csv` writes one row per step (step, epoch, time, loss, every knob, loss terms)
plus the eval rows, for pandas or a spreadsheet (`-` for stdout). `--preset`
writes a preset whose `[[edits]]` replay every edit the run applied, so the next
run starts from what the person learned. Both may be given. An existing file is
never overwritten without `--force`, and a bad log is refused before anything is
written. The work is `schedtui.events.export`; this module only handles files
and messages. Never imports torch, textual or rich.
"""

from __future__ import annotations

import sys
from pathlib import Path

from schedtui.commands import command_parser
from schedtui.errors import UserError
from schedtui.events.export import exported_preset, scan, write_csv
from schedtui.safe_text import visible

EPILOG = """\
LOG is an events.jsonl file or a run directory holding one.

examples:
  schedtui export runs/moons-20261121-190000 --csv steps.csv
  schedtui export runs/moons-20261121-190000 --preset tuned.toml && schedtui tuned.toml
  schedtui export run/events.jsonl --csv - | head
"""


def build_parser():
    p = command_parser("export", "Export a run's event log as a per-step CSV and/or a preset with the run's edits folded in.",
                       EPILOG)
    p.add_argument("log", metavar="LOG", help="the run's event log or run directory")
    p.add_argument("--csv", metavar="FILE", help="write one row per step and per evaluation to FILE (- for stdout)")
    p.add_argument("--preset", metavar="FILE.toml", help="write the run's config, with every edit it applied as [[edits]], to FILE.toml")
    p.add_argument("-f", "--force", action="store_true", help="overwrite files that exist")
    return p


def _check_outputs(args) -> tuple[Path | None, Path | None]:
    if args.csv is None and args.preset is None:
        raise UserError("nothing to export: give --csv FILE and/or --preset FILE.toml (see schedtui export --help)")
    csv_path = None if args.csv in (None, "-") else Path(args.csv).expanduser()
    preset = None if args.preset is None else Path(args.preset).expanduser()
    if preset is not None and preset.suffix != ".toml":
        raise UserError(f"--preset {args.preset}: the file name must end in .toml (so that `schedtui FILE.toml` runs it)")
    if csv_path is not None and preset is not None and csv_path.resolve() == preset.resolve():
        raise UserError(f"--csv and --preset name the same file: {args.csv}")
    for opt, p in (("--csv", csv_path), ("--preset", preset)):
        if p is None:
            continue
        if p.is_dir():
            raise UserError(f"{opt} {p}: is a directory")
        if p.exists() and not args.force:
            raise UserError(f"{opt} {p}: already exists; use --force to overwrite it")
        if not p.parent.is_dir():
            raise UserError(f"{opt} {p}: no such directory {p.parent}")
    return csv_path, preset


def _open(opt: str, path: Path, force: bool):
    try:
        return open(path, "w" if force else "x", encoding="utf-8", newline="")
    except FileExistsError:
        raise UserError(f"{opt} {path}: already exists; use --force to overwrite it") from None
    except OSError as e:
        raise UserError(f"{opt} {path}: cannot write it ({e.strerror or e})") from None


def _write_csv_file(log, s, path: Path, force: bool) -> int:
    f = _open("--csv", path, force)
    try:
        with f:
            return write_csv(log, f, s)
    except BaseException as e:
        path.unlink(missing_ok=True)  # no half-written CSV left behind
        if isinstance(e, OSError):
            raise UserError(f"--csv {path}: cannot write it ({e.strerror or e})") from None
        raise


def _write_csv_stdout(log, s) -> int:
    # data for a pipe as it is; on a terminal, a log's strings with their control characters made visible
    n = write_csv(log, sys.stdout, s, text=visible if sys.stdout.isatty() else None)
    sys.stdout.flush()  # `| head` going away raises BrokenPipeError here: the CLI ends quietly (141)
    return n


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    csv_path, preset = _check_outputs(args)
    s = scan(args.log)  # the whole log is read (and a bad one refused) before anything is written
    for w in s.warnings:
        print(f"schedtui export: warning: {visible(s.path)}: {visible(w)}", file=sys.stderr)
    done = []
    if preset is not None:
        text = exported_preset(args.log, s.path, s)
        try:
            with _open("--preset", preset, args.force) as f:
                f.write(text)
        except OSError as e:
            raise UserError(f"--preset {preset}: cannot write it ({e.strerror or e})") from None
        done.append(f"wrote {visible(preset)}: a preset with {_n(len(s.edit_events), 'edit')} folded in "
                    f"(run it with: schedtui {visible(preset)})")
    if args.csv is not None:
        rows = _write_csv_file(args.log, s, csv_path, args.force) if csv_path else _write_csv_stdout(args.log, s)
        done.append(f"wrote {visible(csv_path or 'stdout')}: {_n(rows, 'row')} ({_n(s.steps, 'step')}, {_n(s.evals, 'eval')})")
    for line in done:
        print(line, file=sys.stderr if args.csv == "-" else sys.stdout)
    return 0
