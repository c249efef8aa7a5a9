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

A log is data: `rerun` and `resume` re-import the experiment a log's header names
only with the user's consent (`consent_to_logged`): `--experiment module:function`
on the command line, equal to the log's, or a yes on a terminal after being shown
the module and the file it would be imported from; otherwise a one-line refusal
that says how to allow it. Nothing is imported to find that file (only the
top-level module is looked up, without running it).
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
from schedtui.safe_text import visible

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
    train_step: Callable | None = None  # train_step(model, batch, ctx) -> loss tensor | {"loss": ..., other terms}
    eval_step: Callable | None = None  # eval_step(model, batch, ctx) -> loss | {"loss", "acc", other metrics}
    manual: bool = False  # train_step does its own backward and optimizer steps (ctx.optimizers): a GAN
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
    _cwd_on_path()
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


def _cwd_on_path() -> None:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules next to where schedtui runs are importable


def _where(module_name: str) -> str:
    """Where `module_name`'s top-level package or module would be imported from, found without running it."""
    import importlib.util

    top = module_name.split(".")[0]
    saved = list(sys.path)
    try:
        _cwd_on_path()
        spec = importlib.util.find_spec(top)
    except Exception:  # a name importlib cannot even look up
        spec = None
    finally:
        sys.path[:] = saved
    if spec is None:
        return "not found from here"
    origin = spec.origin if spec.has_location else None
    if origin is None and spec.submodule_search_locations:
        origin = next(iter(spec.submodule_search_locations), None)
    return visible(origin or spec.origin or "built in")


def consent_to_logged(logged, named: str | None, source: str, command: str, *, stdin=None, stdout=None) -> None:
    """Raise UserError unless the user allowed importing `logged`, the experiment a log's header names.

    `named`: the command line's --experiment (must equal `logged`). Without it, on a terminal (stdin and
    stdout both ttys) the user is shown the module and its file and asked (default no); elsewhere it is a
    one-line refusal saying how to allow it. A log without an experiment needs nothing (and takes no
    --experiment); a run of an own loop cannot be re-executed at all."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    if logged is None:
        if named is not None:
            raise UserError(f"--experiment {visible(named)}: {source} names no experiment (it ran a built-in model)")
        return
    if logged == OWN_LOOP:
        load_factory(OWN_LOOP)  # says, in one line, why a run of an own loop cannot be re-executed
    shown = visible(logged)
    if not isinstance(logged, str) or logged.count(":") != 1 or not all(logged.split(":")):
        raise UserError(f"{source}: its experiment {shown!r} is not module:function")
    if named is not None:
        if named != logged:
            raise UserError(f"--experiment {visible(named)} does not match the experiment {shown} in {source}; "
                            f"they must be the same")
        return
    module = logged.split(":")[0]
    what = f"{shown} (imports module {visible(module)} from {_where(module)}, which runs its code)"
    if _isatty(stdin) and _isatty(stdout):
        stdout.write(f"{source} names the experiment {what}.\nImport it and {command}? [y/N] ")
        stdout.flush()
        try:
            answer = stdin.readline()
        except (OSError, ValueError, KeyboardInterrupt):
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return
        raise UserError(f"not importing {shown}: nothing started (--experiment {shown} allows it without asking)")
    raise UserError(f"{source} names the experiment {what}; a log is data, so schedtui imports it only when you "
                    f"name it: add --experiment {shown}")


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


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
    for name in ("train_step", "eval_step"):
        fn = getattr(out, name)
        if fn is not None and not callable(fn):
            raise UserError(f"experiment {target!r}: {name} must be a function {name}(model, batch, ctx), got {type(fn).__name__}")
    if out.manual and out.train_step is None:
        raise UserError(f"experiment {target!r}: manual=True needs a train_step that does its own backward and steps")
    if out.loss is not None and out.train_step is not None:
        raise UserError(f"experiment {target!r}: give loss or train_step, not both (train_step computes its loss)")
    if out.loss is not None and not callable(out.loss):
        raise UserError(f"experiment {target!r}: loss must be a function loss(output, target) -> tensor, got {type(out.loss).__name__}")
    knobs = list(out.knobs or [])
    for k in knobs:
        if not isinstance(k, Knob):
            raise UserError(f"experiment {target!r}: knobs must be schedtui.Knob(name, get, set, bounds), got {type(k).__name__}")
    out.knobs = knobs
    return out
