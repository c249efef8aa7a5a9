"""A factory's pieces (`schedtui.Experiment`) turned into what `build_run` builds for a preset.

Model to the device; data through `user_data`; the optimizer as given (its groups
get names so `lr@NAME` knobs find them), or built from the preset's `[optimizer]`
updated with the factory's settings dict; the loss as given (`UserLoss`), or the
preset's `[loss]` (cross-entropy, or binary cross-entropy for float targets);
metrics for validation; extra knobs checked against the built-in names later.
Everything wrong is a one-line UserError. torch only; must not import textual/rich.
"""

from __future__ import annotations

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


def experiment_pieces(cfg: dict, device: torch.device, data_dir):
    """(data, model, optimizer, loss, extra knobs, metrics, adopted scheduler or None) from the factory `cfg["experiment"]` names; the
    factory gets the config with `data_dir` (--data-dir) added."""
    target = cfg["experiment"]
    exp = call_factory(target, {**cfg, "data_dir": str(data_dir)})
    if not isinstance(exp.model, nn.Module):
        raise UserError(f"experiment {target!r}: model must be a torch.nn.Module, got {type(exp.model).__name__}")
    model = exp.model.to(device)
    data = user_data(exp.train, exp.val, cfg["data"], device, cfg["seed"], target)
    optimizer = _optimizer(exp.optimizer, model, cfg, target)
    if exp.loss is None:
        loss = WeightedLoss(model, _target_task(data.train), cfg["loss"]["terms"], cfg["loss"]["label_smoothing"])
    else:
        loss = UserLoss(exp.loss)
    F(float, lo=0.0).check("optimizer.grad_clip", cfg["optimizer"]["grad_clip"])
    scheduler = None
    if exp.scheduler is not None:
        from schedtui.engine.adopted import adopt_scheduler

        if exp.optimizer is None or isinstance(exp.optimizer, dict):
            raise UserError(f"experiment {target!r}: a scheduler needs the optimizer it was built on (optimizer=...)")
        scheduler = adopt_scheduler(exp.scheduler, optimizer, exp.scheduler_unit, exp.scheduler_metric, cfg)
    return data, model, optimizer, loss, exp.knobs, dict(exp.metrics), scheduler
