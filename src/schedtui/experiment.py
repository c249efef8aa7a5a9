"""Bring your own training: what a factory (`schedtui run module:function`) returns, and loading it.

A factory is a function, importable as `module:function`, that returns an
`Experiment` (or a dict with the same keys): the model, the training data and
optionally validation data (a map-style dataset of (input, target) pairs, a
DataLoader, or an (inputs, targets) pair of tensors), an optimizer or its settings,
a loss function `loss(output, target) -> scalar tensor`, metrics
`{name: fn(output, target) -> scalar}` evaluated on the validation data, and
extra `Knob`s. It may take one argument: the run's resolved config (a dict, with
`data_dir`, the --data-dir, added: where to keep datasets). The
preset's schedules, edits, SWA, EMA, early stopping and checkpoints apply to it
as to a built-in model. Importing the user's module runs its code: that is the
only code a preset can make schedtui run. Every wrong piece is a one-line
UserError naming what was expected. Pure Python here (no torch at import).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from schedtui.errors import UserError
from schedtui.knob import Knob

TARGET_HELP = "module:function, e.g. mypkg.train:experiment (the module must be importable from here)"
OWN_LOOP = "<own loop>"  # the experiment of a run driven by schedtui.monitor or a framework's callback: no factory


@dataclass
class Experiment:
    model: Any  # torch.nn.Module
    train: Any  # Dataset | DataLoader | (inputs, targets)
    val: Any = None  # the same kinds; default: no validation (val loss/acc stay empty)
    optimizer: Any = None  # torch.optim.Optimizer, or a dict of [optimizer] settings, or None: the preset's
    loss: Callable | None = None  # loss(output, target) -> scalar tensor; None: the preset's [loss] (cross-entropy)
    metrics: dict = field(default_factory=dict)  # name -> fn(output, target) -> scalar, on validation data
    knobs: list = field(default_factory=list)  # extra Knob(name, get, set, bounds)
    scheduler: Any = None  # your own torch.optim.lr_scheduler object on `optimizer`: schedtui steps it (adopted)
    scheduler_unit: str | None = None  # "step" | "epoch": when it steps (default: step for OneCycleLR/CyclicLR)
    scheduler_metric: str | None = None  # ReduceLROnPlateau's metric (default val_loss; val_acc for mode "max")


def load_factory(target: str) -> Callable:
    """The function `target` names; UserError if it cannot be imported or is not callable."""
    if target == OWN_LOOP:
        raise UserError("this run was driven by its own training loop (schedtui.monitor, or a Lightning or Hugging "
                        "Face Trainer callback): there is no factory to run again; replay, diff and export work on its log")
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        raise UserError(f"experiment {target!r}: expected {TARGET_HELP}")
    module_name, func_name = target.split(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules next to where schedtui runs are importable
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise UserError(f"experiment {target!r}: no module named {e.name!r} (run from its directory, or install it)") from None
        raise UserError(f"experiment {target!r}: importing {module_name} failed: ModuleNotFoundError: {e}") from None
    except Exception as e:
        raise UserError(f"experiment {target!r}: importing {module_name} failed: {type(e).__name__}: {e}") from None
    func = getattr(module, func_name, None)
    if func is None:
        names = ", ".join(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))[:200]
        raise UserError(f"experiment {target!r}: {module_name} has no {func_name!r}; callables there: {names or 'none'}")
    if not callable(func):
        raise UserError(f"experiment {target!r}: {func_name} is a {type(func).__name__}, not a function")
    return func


def call_factory(target: str, cfg: dict) -> Experiment:
    """Call the factory (with the config if it takes an argument) and check the shape of what it returns."""
    func = load_factory(target)
    try:
        takes = len([p for p in inspect.signature(func).parameters.values()
                     if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        takes = 0
    if takes > 1:
        raise UserError(f"experiment {target!r}: the factory takes {takes} arguments; it may take none, or the config")
    try:
        out = func(dict(cfg)) if takes == 1 else func()
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"experiment {target!r}: the factory raised {type(e).__name__}: {e}") from None
    if isinstance(out, dict):
        unknown = sorted(set(out) - {f.name for f in fields(Experiment)})
        if unknown:
            raise UserError(f"experiment {target!r}: unknown piece {unknown[0]!r}; an Experiment has "
                            f"{', '.join(f.name for f in fields(Experiment))}")
        if "model" not in out or "train" not in out:
            raise UserError(f"experiment {target!r}: the factory must return at least model and train")
        out = Experiment(**out)
    if not isinstance(out, Experiment):
        raise UserError(f"experiment {target!r}: the factory returned {type(out).__name__}; expected schedtui.Experiment or a dict")
    if not isinstance(out.metrics, dict) or not all(isinstance(k, str) and callable(f) for k, f in out.metrics.items()):
        raise UserError(f"experiment {target!r}: metrics must be a dict of name -> fn(output, target)")
    if out.loss is not None and not callable(out.loss):
        raise UserError(f"experiment {target!r}: loss must be a function loss(output, target) -> tensor, got {type(out.loss).__name__}")
    knobs = list(out.knobs or [])
    for k in knobs:
        if not isinstance(k, Knob):
            raise UserError(f"experiment {target!r}: knobs must be schedtui.Knob(name, get, set, bounds), got {type(k).__name__}")
    out.knobs = knobs
    return out
