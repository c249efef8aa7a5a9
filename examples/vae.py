"""A VAE whose two loss terms are logged apart and whose KL weight is a knob, as in pytorch/examples' vae.

    schedtui run examples.vae:experiment --preset examples/vae.toml

Binary 8x8 "images" (random bars). `train_step` returns `{"loss": bce + kl_weight *
kld, "bce": bce, "kld": kld}`: both terms are logged and charted, and `kl_weight` is a
`schedtui.Knob`, warmed up from 0 by the preset's schedule and editable live.
Runs on a CPU in seconds.
"""

import torch
from torch import nn

import schedtui


class VAE(nn.Module):
    def __init__(self, d: int = 64, z: int = 4):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d, 32), nn.ReLU())
        self.mu, self.logvar = nn.Linear(32, z), nn.Linear(32, z)
        self.dec = nn.Sequential(nn.Linear(z, 32), nn.ReLU(), nn.Linear(32, d))

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.dec(z), mu, logvar


class Weight:
    kl = 1.0


def bars(n: int, g: torch.Generator) -> torch.Tensor:
    img = torch.zeros(n, 8, 8)
    rows = torch.randint(0, 8, (n,), generator=g)
    cols = torch.randint(0, 8, (n,), generator=g)
    img[torch.arange(n), rows, :] = 1.0
    img[torch.arange(n), :, cols] = 1.0
    return img.flatten(1)


def make_step(weight: Weight):
    def step(model, batch, ctx):
        (x,) = batch
        recon, mu, logvar = model(x)
        bce = nn.functional.binary_cross_entropy_with_logits(recon, x, reduction="sum") / x.shape[0]
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
        return {"loss": bce + weight.kl * kld, "bce": bce, "kld": kld}

    return step


def experiment(cfg: dict) -> schedtui.Experiment:
    g = torch.Generator().manual_seed(cfg["seed"])
    data = bars(640, g)
    torch.manual_seed(cfg["seed"])
    model, weight = VAE(), Weight()
    return schedtui.Experiment(
        model=model,
        train=(data[:512],),
        val=(data[512:],),
        optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
        train_step=make_step(weight),
        knobs=[schedtui.Knob("kl_weight", lambda: weight.kl, lambda v: setattr(weight, "kl", v), (0.0, 10.0),
                             "weight of the KL term")],
    )
