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
        groups.append({"params": params, "name": g["name"], "lr": g.get("lr", cfg["lr"]),
                       "weight_decay": g.get("weight_decay", cfg["weight_decay"])})
    rest = [p for n, p in named if n not in taken]
    if rest:
        groups.insert(0, {"params": rest, "name": "default"})
    common = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"], **({"fused": True} if fused else {})}
    if kind == "SGD":
        return torch.optim.SGD(groups, momentum=cfg["momentum"], nesterov=cfg["nesterov"] and cfg["momentum"] > 0, **common)
    betas = (cfg["momentum"], cfg["beta2"])
    cls = torch.optim.Adam if kind == "Adam" else torch.optim.AdamW
    return cls(groups, betas=betas, eps=cfg["eps"], **common)
