"""A factory's pieces (`schedtui.Experiment`) turned into what `build_run` builds for a preset.

Model to the device; data through `user_data`; the optimizer as given (its groups
get names so `lr@NAME` knobs find them), or built from the preset's `[optimizer]`
updated with the factory's settings dict; the loss as given (`UserLoss`), or the
preset's `[loss]` (cross-entropy, or binary cross-entropy for float targets);
metrics for validation; extra knobs checked against the built-in names later.
Everything wrong is a one-line UserError. torch only; must not import textual/rich.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from schedtui.config.schema import OPTIMIZER, F
from schedtui.engine.losses import UserLoss, WeightedLoss
from schedtui.engine.optim import build_optimizer
from schedtui.engine.user_data import DatasetLoader, ForeignLoader, user_data
from schedtui.errors import UserError
from schedtui.experiment import call_factory


def _optimizer(given, model: nn.Module, cfg: dict, target: str) -> torch.optim.Optimizer:
    if given is None or isinstance(given, dict):
        settings = dict(cfg["optimizer"])
        for key, value in (given or {}).items():
            if key not in OPTIMIZER:
                raise UserError(f"experiment {target!r}: optimizer setting {key!r} is unknown; valid: {', '.join(OPTIMIZER)}")
            settings[key] = OPTIMIZER[key].check(f"optimizer.{key}", value)
        cfg["optimizer"] = settings  # the header's config says what the run used
        return build_optimizer(model, settings)
    if not isinstance(given, torch.optim.Optimizer):
        raise UserError(f"experiment {target!r}: optimizer must be a torch.optim.Optimizer or a dict of settings, "
                        f"got {type(given).__name__}")
    mine = {id(p) for p in model.parameters()}
    if not any(id(p) in mine for g in given.param_groups for p in g["params"]):
        raise UserError(f"experiment {target!r}: the optimizer does not hold the model's parameters "
                        "(build it from model.parameters() after moving nothing; schedtui moves the model)")
    cfg["optimizer"] = {"kind": "given", "grad_clip": cfg["optimizer"]["grad_clip"], "groups": []}  # the header's
    # `optimizer` field describes what it really is; the preset's optimizer settings do not apply to it
    return given


def _target_task(data) -> str:
    """binary for float targets (one logit), multiclass for integer class indices."""
    sample = None
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[1], torch.Tensor):
        sample = data[1]
    elif isinstance(data, DatasetLoader):
        sample = data.dataset[0][1]
    elif isinstance(data, ForeignLoader) and hasattr(data.loader.dataset, "__getitem__"):
        sample = data.loader.dataset[0][1]
    elif hasattr(data, "y"):
        sample = data.y
    floating = isinstance(sample, float) or (isinstance(sample, torch.Tensor) and sample.dtype.is_floating_point)
    return "binary" if floating else "multiclass"


@dataclass
class Pieces:
    data: object
    model: nn.Module
    optimizer: object  # an Optimizer, or name -> Optimizer (several)
    loss: object
    knobs: list
    metrics: dict
    scheduler: object = None  # engine.adopted.AdoptedScheduler
    train_step: object = None
    eval_step: object = None
    manual: bool = False


def _several(given) -> bool:
    return isinstance(given, dict) and bool(given) and all(isinstance(v, torch.optim.Optimizer) for v in given.values())


def experiment_pieces(cfg: dict, device: torch.device, data_dir) -> Pieces:
    """The factory `cfg["experiment"]` names, called with the config (and `data_dir`, the --data-dir), its
    pieces checked and put on the device."""
    target = cfg["experiment"]
    exp = call_factory(target, {**cfg, "data_dir": str(data_dir)})
    if not isinstance(exp.model, nn.Module):
        raise UserError(f"experiment {target!r}: model must be a torch.nn.Module, got {type(exp.model).__name__}")
    model = exp.model.to(device)
    custom = exp.train_step is not None
    data = user_data(exp.train, exp.val, cfg["data"], device, cfg["seed"], target, pairs=not custom)
    if isinstance(exp.optimizer, dict) and any(isinstance(v, torch.optim.Optimizer) for v in exp.optimizer.values()):
        for k, v in exp.optimizer.items():
            if not isinstance(v, torch.optim.Optimizer):
                raise UserError(f"experiment {target!r}: optimizer {k!r}: expected a torch.optim.Optimizer, got {type(v).__name__}")
    if _several(exp.optimizer):
        optimizer = {str(k): _optimizer(v, model, cfg, f"{target}' optimizer {k!r}") for k, v in exp.optimizer.items()}
        if not exp.manual:
            raise UserError(f"experiment {target!r}: several optimizers ({', '.join(optimizer)}) need manual=True and a "
                            "train_step that steps them (ctx.optimizers)")
        cfg["optimizer"]["kind"] = "given"
    else:
        optimizer = _optimizer(exp.optimizer, model, cfg, target)
    if exp.manual and exp.eval_step is None and exp.val is not None:
        raise UserError(f"experiment {target!r}: a manual train_step does its own backward and steps: give eval_step "
                        "to validate (or no val data)")
    if custom:
        loss = UserLoss(None)
    elif exp.loss is None:
        loss = WeightedLoss(model, _target_task(data.train), cfg["loss"]["terms"], cfg["loss"]["label_smoothing"])
    else:
        loss = UserLoss(exp.loss)
    F(float, lo=0.0).check("optimizer.grad_clip", cfg["optimizer"]["grad_clip"])
    scheduler = None
    if exp.scheduler is not None:
        from schedtui.engine.adopted import adopt_scheduler

        owners = optimizer if isinstance(optimizer, dict) else {"": optimizer}
        owner = next((o for o in owners.values() if getattr(exp.scheduler, "optimizer", None) is o), None)
        if owner is None or exp.optimizer is None or (isinstance(exp.optimizer, dict) and not _several(exp.optimizer)):
            raise UserError(f"experiment {target!r}: a scheduler needs the optimizer it was built on (optimizer=...)")
        scheduler = adopt_scheduler(exp.scheduler, owner, exp.scheduler_unit, exp.scheduler_metric, cfg)
    return Pieces(data, model, optimizer, loss, exp.knobs, dict(exp.metrics), scheduler, exp.train_step, exp.eval_step,
                  bool(exp.manual))
