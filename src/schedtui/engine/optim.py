"""The optimizer, with named parameter groups (`[[optimizer.groups]]`).

A group takes the parameters whose names match any of its fnmatch patterns (first
group wins); the rest form the group "default". Each group gets `name` in its
param_group dict so knobs like `lr@head` find it. torch only; no textual/rich.
"""

from __future__ import annotations

from fnmatch import fnmatch

import torch
from torch import nn

from schedtui.errors import UserError


def build_optimizer(model: nn.Module, cfg: dict, fused: bool = False) -> torch.optim.Optimizer:
    """`fused`: torch's fused implementation (on CUDA: one kernel, and a found-inf flag can make a step a no-op
    on the device, see `engine.engine`)."""
    kind = cfg["kind"]
    named = list(model.named_parameters())
    groups, taken = [], set()
    for g in cfg["groups"]:
        params = [p for n, p in named if n not in taken and any(fnmatch(n, pat) for pat in g["params"])]
        if not params:
            names = ", ".join(n for n, _ in named[:6]) + (", ..." if len(named) > 6 else "")
            raise UserError(f"optimizer group {g['name']!r}: no parameter matches {g['params']}; parameters: {names}")
        taken.update(n for n, p in named if any(p is q for q in params))
        group = {"params": params, "name": g["name"]}
        for key in ("lr", "weight_decay"):
            if g.get(key, cfg.get(key)) is not None:
                group[key] = g.get(key, cfg.get(key))
        groups.append(group)
    rest = [p for n, p in named if n not in taken]
    if rest:
        groups.insert(0, {"params": rest, "name": "default"})
    if kind not in ("SGD", "Adam", "AdamW"):
        return _torch_optimizer(kind, groups, cfg)
    common = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"], **({"fused": True} if fused else {})}
    if kind == "SGD":
        return torch.optim.SGD(groups, momentum=cfg["momentum"], nesterov=cfg["nesterov"] and cfg["momentum"] > 0, **common)
    betas = (cfg["momentum"], cfg["beta2"])
    cls = torch.optim.Adam if kind == "Adam" else torch.optim.AdamW
    return cls(groups, betas=betas, eps=cfg["eps"], **common)


_OURS = ("kind", "grad_clip", "groups")


def _torch_optimizer(kind: str, groups: list, cfg: dict) -> torch.optim.Optimizer:
    """Any torch.optim class by name, with torch's own argument names from [optimizer]."""
    import inspect

    cls = getattr(torch.optim, kind, None)
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        names = sorted(n for n, c in vars(torch.optim).items()
                       if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer)
        raise UserError(f"optimizer.kind: torch.optim has no optimizer {kind!r}; optimizers: {', '.join(names)}")
    accepted = [p for p in inspect.signature(cls).parameters if p != "params"]
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k not in _OURS}
    for k in args:
        if k not in accepted:
            raise UserError(f"optimizer.{k}: {kind} takes no {k!r}; its arguments: {', '.join(accepted)} (to replace "
                            f"the preset's whole table: --set 'optimizer={{kind=\"{kind}\", lr=...}}')")
    if "weight_decay" in {k for g in groups for k in g} and "weight_decay" not in accepted:
        raise UserError(f"optimizer.groups: {kind} has no weight_decay")
    try:
        return cls(groups, **args)
    except (TypeError, ValueError, RuntimeError) as e:
        raise UserError(f"optimizer: {kind}({', '.join(f'{k}={v!r}' for k, v in args.items())}) refused: "
                        f"{str(e).strip().splitlines()[0][:160]}") from None
