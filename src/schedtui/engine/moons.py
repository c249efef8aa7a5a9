"""Two interleaving half circles ("moons"), generated in torch from a seed.

Contract: `make_moons(n_samples, noise, seed)` returns CPU tensors
`x float32 [N, 2]` and `y float32 [N]` (labels 0/1 for BCE), the same as
scikit-learn's classic construction: outer moon `(cos t, sin t)` labelled 0,
inner moon `(1 - cos t, 1 - sin t - 0.5)` labelled 1, `t = linspace(0, pi)`,
Gaussian noise of std `noise`, shuffled. Same seed -> identical data.
torch only (no numpy randomness, no scikit-learn); must not import textual/rich.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from schedtui.errors import UserError


def make_moons(n_samples: int, noise: float, seed: int) -> tuple[Tensor, Tensor]:
    if n_samples < 2:
        raise UserError(f"data.n_samples: need at least 2 points for two moons, got {n_samples}")
    if not noise >= 0:
        raise UserError(f"data.noise: must be >= 0, got {noise}")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = torch.linspace(0.0, math.pi, n_out, dtype=torch.float64)
    t_in = torch.linspace(0.0, math.pi, n_in, dtype=torch.float64)
    outer = torch.stack([torch.cos(t_out), torch.sin(t_out)], dim=1)
    inner = torch.stack([1.0 - torch.cos(t_in), 1.0 - torch.sin(t_in) - 0.5], dim=1)
    x = torch.cat([outer, inner])
    y = torch.cat([torch.zeros(n_out, dtype=torch.float64), torch.ones(n_in, dtype=torch.float64)])
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    perm = torch.randperm(n_samples, generator=gen)
    return x[perm].to(torch.float32), y[perm].to(torch.float32)
