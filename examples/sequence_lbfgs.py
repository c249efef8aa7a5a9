"""Sequence prediction trained with LBFGS, as pytorch/examples' time_sequence_prediction does.

    schedtui run examples.sequence_lbfgs:experiment --preset examples/sequence_lbfgs.toml

Sine waves with random phases; a two-layer LSTMCell predicts each next value. LBFGS
re-evaluates the loss several times per update: schedtui steps it with a closure, and
the loss the log records is its first evaluation (what `optimizer.step(closure)`
returns). The lr is a knob like any other. Runs on a CPU in seconds.
"""

import torch
from torch import nn

import schedtui


class Sequence(nn.Module):
    def __init__(self, hidden: int = 16):
        super().__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, x):  # x: (batch, time); predicts x[:, t+1] from x[:, :t+1]
        h1 = c1 = x.new_zeros(x.shape[0], self.hidden)
        h2 = c2 = x.new_zeros(x.shape[0], self.hidden)
        out = []
        for t in range(x.shape[1]):
            h1, c1 = self.lstm1(x[:, t:t + 1], (h1, c1))
            h2, c2 = self.lstm2(h1, (h2, c2))
            out.append(self.linear(h2))
        return torch.cat(out, dim=1)


def waves(n: int, length: int, g: torch.Generator) -> torch.Tensor:
    phase = torch.randint(-40, 40, (n, 1), generator=g).float()
    return torch.sin((torch.arange(length).float() + phase) / 4.0)


def experiment(cfg: dict) -> schedtui.Experiment:
    g = torch.Generator().manual_seed(cfg["seed"])
    data = waves(40, 33, g)
    torch.manual_seed(cfg["seed"])
    model = Sequence()
    return schedtui.Experiment(
        model=model,
        train=(data[:32, :-1], data[:32, 1:]),
        val=(data[32:, :-1], data[32:, 1:]),
        optimizer=torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4),
        loss=nn.MSELoss(),
    )
