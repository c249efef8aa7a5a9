"""What a run really trains with, for the log's header: the optimizer (class, defaults, every group's
settings) and the model (class, parameter count).

The header records these as the live objects hold them when the run starts, so
a log says `Adadelta, lr 1.0` when that is what trained, whatever the config's
defaults say. Values that are not plain (tensors, tuples) are made plain. torch
only through the objects handed in; no textual/rich.
"""

from __future__ import annotations


def _plain(v):
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    item = getattr(v, "item", None)
    if callable(item) and getattr(v, "numel", lambda: 2)() == 1:
        return _plain(item())
    return str(v)


def describe_optimizer(opt) -> dict:
    groups = []
    for i, g in enumerate(opt.param_groups):
        settings = {k: _plain(v) for k, v in g.items() if k != "params"}
        settings["parameters"] = sum(p.numel() for p in g["params"])
        settings.setdefault("name", "default" if i == 0 else f"group{i}")
        groups.append(settings)
    return {"class": f"{type(opt).__module__}.{type(opt).__qualname__}",
            "defaults": {k: _plain(v) for k, v in opt.defaults.items()}, "groups": groups}


def describe_model(model) -> dict:
    return {"class": f"{type(model).__module__}.{type(model).__qualname__}",
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def header_fields(parts, own_loop: bool = False) -> dict:
    """The header fields every run's log has beside its config: steps per epoch, what drives each knob, the
    real optimizer and model, and whether a loop of the user's own drove it."""
    return {"steps_per_epoch": parts.timing.steps_per_epoch,
            "knobs": {k: parts.schedules.describe(k) for k in parts.knobs},
            "optimizer": ({n: describe_optimizer(o) for n, o in parts.optimizer.items()} if isinstance(parts.optimizer, dict)
                          else describe_optimizer(parts.optimizer)),
            "model": describe_model(parts.model),
            "own_loop": own_loop}
