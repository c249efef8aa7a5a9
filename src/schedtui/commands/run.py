"""`schedtui run module:function`: train your own model, data and loss under schedtui.

The function (a factory, see `schedtui.experiment`) returns the pieces; a preset
file given with `--preset` (or `--set` values) supplies schedules, SWA, EMA,
early stopping, engine settings and the rest, exactly as for a built-in preset.
The same run can be written as a preset file with `experiment = "module:function"`
and started with `schedtui FILE.toml`. Importing the module runs its code: it is
the only code a preset can make schedtui run. Imports torch only when the run
starts.
"""

from __future__ import annotations

from pathlib import Path

from schedtui.commands import command_parser
from schedtui.errors import UserError

EPILOG = """\
examples:
  schedtui run examples.weighted_loss:experiment
  schedtui run mypkg.train:experiment --preset schedules.toml --epochs 5
  schedtui run mypkg.train:experiment --set 'schedules.lr={kind="OneCycleLR", max_lr=0.1, unit="step"}'

The function may take the run's config (a dict) and returns schedtui.Experiment(model=..., train=..., val=...,
optimizer=..., loss=..., metrics=..., knobs=[schedtui.Knob(name, get, set, (lo, hi))]).
"""


def build_parser():
    from schedtui.cli import add_preset_options, add_run_options

    p = command_parser("run", "Train your own model, data and loss (a factory function) with every schedtui feature.", EPILOG)
    p.add_argument("target", metavar="MODULE:FUNCTION", help="the factory, e.g. mypkg.train:experiment")
    p.add_argument("--preset", metavar="FILE.toml", help="schedules, SWA, engine settings... for it (default: none)")
    add_preset_options(p)
    add_run_options(p, "auto")
    return p


def main(argv: list[str]) -> int:
    from schedtui.cli import preset_overrides, run
    from schedtui.config.load import read_toml, resolve

    args = build_parser().parse_args(argv)
    table: dict = {}
    if args.preset:
        path = Path(args.preset).expanduser()
        if not path.is_file():
            raise UserError(f"--preset {path}: no such file")
        table = read_toml(path)
        if table.get("experiment") not in (None, args.target):
            raise UserError(f"--preset {path} names experiment {table['experiment']!r}; the command line says {args.target!r}")
    name = args.target.split(":", 1)[0].rsplit(".", 1)[-1] or "run"  # the module's own name
    cfg = resolve({**table, "experiment": args.target}, preset_overrides(args), name=table.get("name") or name)
    return run(cfg, args)
