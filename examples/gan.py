"""A GAN with two optimizers and a manual step, as pytorch/examples' dcgan trains (here on 2-D points).

    schedtui run examples.gan:experiment --preset examples/gan.toml

The generator learns a ring of eight Gaussians. `train_step` does the discriminator's
update and then the generator's, with `ctx.optimizers["D"]` and `["G"]` (`manual=True`:
schedtui runs the step boundary, logs both losses and drives the knobs `lr@G`, `lr@D`,
`momentum@G`, ... — each schedulable and editable live). Runs on a CPU in seconds.
"""

import math

import torch
from torch import nn

import schedtui

NOISE = 8


def ring(n: int, g: torch.Generator) -> torch.Tensor:
    k = torch.randint(0, 8, (n,), generator=g).float() * (2 * math.pi / 8)
    return torch.stack([torch.cos(k), torch.sin(k)], 1) * 2 + 0.05 * torch.randn(n, 2, generator=g)


def train_step(model, batch, ctx):
    (real,) = batch
    bce = nn.functional.binary_cross_entropy_with_logits
    opt_d, opt_g = ctx.optimizers["D"], ctx.optimizers["G"]
    z = torch.randn(real.shape[0], NOISE, device=real.device)
    fake = model["G"](z)
    opt_d.zero_grad()
    d_real, d_fake = model["D"](real), model["D"](fake.detach())
    loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
    loss_d.backward()
    opt_d.step()
    opt_g.zero_grad()
    d_fake = model["D"](fake)
    loss_g = bce(d_fake, torch.ones_like(d_fake))
    loss_g.backward()
    opt_g.step()
    return {"loss": loss_d.detach() + loss_g.detach(), "d": loss_d.detach(), "g": loss_g.detach()}


def experiment(cfg: dict) -> schedtui.Experiment:
    g = torch.Generator().manual_seed(cfg["seed"])
    points = ring(512, g)
    torch.manual_seed(cfg["seed"])
    model = nn.ModuleDict({
        "G": nn.Sequential(nn.Linear(NOISE, 32), nn.ReLU(), nn.Linear(32, 2)),
        "D": nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1)),
    })
    return schedtui.Experiment(
        model=model,
        train=(points,),  # one tensor: a batch is a 1-tuple of real points
        optimizer={"G": torch.optim.Adam(model["G"].parameters(), lr=2e-3, betas=(0.5, 0.999)),
                   "D": torch.optim.Adam(model["D"].parameters(), lr=2e-3, betas=(0.5, 0.999))},
        train_step=train_step,
        manual=True,
    )
