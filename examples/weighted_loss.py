"""A two-term loss whose weights are knobs: scheduled in the preset, edited live.

    schedtui run examples.weighted_loss:experiment --preset examples/weighted_loss.toml

Regression on a noisy sine with a small MLP; the loss is
`w_mse * mse + w_l1 * mean absolute error`. `w_mse` and `w_l1` are `schedtui.Knob`s:
the preset moves the weight from the robust L1 term to the MSE term over the run,
and the UI's knob table can set or reschedule either while it trains. Runs on a CPU in
seconds; generates its data (no download).
"""

import math

import torch
from torch import nn

import schedtui


class TwoTermLoss:
    def __init__(self, w_mse: float = 0.0, w_l1: float = 1.0):
        self.w_mse, self.w_l1 = w_mse, w_l1  # the knobs write these; the loss reads them every step

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        err = pred.squeeze(-1) - target
        return self.w_mse * err.pow(2).mean() + self.w_l1 * err.abs().mean()


def experiment(cfg: dict) -> schedtui.Experiment:
    g = torch.Generator().manual_seed(cfg["seed"])
    x = torch.linspace(-math.pi, math.pi, 2048).unsqueeze(-1)
    y = torch.sin(2 * x).squeeze(-1) + 0.3 * torch.randn(2048, generator=g)
    val = torch.arange(2048) % 5 == 0
    torch.manual_seed(cfg["seed"])
    model = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    loss = TwoTermLoss()
    return schedtui.Experiment(
        model=model,
        train=(x[~val], y[~val]),
        val=(x[val], y[val]),
        optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        loss=loss,
        metrics={"mae": lambda pred, target: (pred.squeeze(-1) - target).abs().mean()},
        knobs=[
            schedtui.Knob("w_mse", lambda: loss.w_mse, lambda v: setattr(loss, "w_mse", v), (0.0, None), "weight of the MSE term"),
            schedtui.Knob("w_l1", lambda: loss.w_l1, lambda v: setattr(loss, "w_l1", v), (0.0, 10.0), "weight of the L1 term"),
        ],
    )
