"""Keep your own training loop: `schedtui.monitor` schedules, logs and steers it.

    python -m examples.own_loop            # the live screen in a terminal; headless otherwise

A plain PyTorch loop on two half-moons with an MLP: schedtui drives the lr
(one-cycle) and the dropout (a custom knob here would work the same), records every
loss, and takes edits, pauses and SWA from the screen at the `mon.step` boundary.
Runs on a CPU in seconds; generates its data.
"""

import torch
from torch import nn

import schedtui


def make_data(n: int = 1000, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g) * torch.pi
    upper = torch.rand(n, generator=g) < 0.5
    x = torch.stack([torch.where(upper, torch.cos(t), 1 - torch.cos(t)), torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))], 1)
    return x + 0.2 * torch.randn(n, 2, generator=g), (~upper).long()


def main(epochs: int = 20, runs_dir: str = "runs") -> str:
    torch.manual_seed(0)
    x, y = make_data()
    train, val = (x[:800], y[:800]), (x[800:], y[800:])
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = 800 // 32
    mon = schedtui.monitor(model, optimizer, epochs=epochs, steps_per_epoch=batches, name="own-loop", runs_dir=runs_dir,
                           schedules={"lr": {"kind": "OneCycleLR", "max_lr": 0.2, "unit": "step"},
                                      "dropout": {"kind": "linear", "end": 0.0, "unit": "epoch"}})

    def loop(mon):
        for _ in range(epochs):
            model.train()
            order = torch.randperm(800)
            for i in range(batches):
                idx = order[i * 32:(i + 1) * 32]
                loss = nn.functional.cross_entropy(model(train[0][idx]), train[1][idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                mon.step(loss, batch_size=32)  # schedtui's step boundary: edits, pauses, the next knob values
            model.eval()
            with torch.no_grad():
                out = model(val[0])
                mon.epoch(val_loss=nn.functional.cross_entropy(out, val[1]).item(), val_acc=(out.argmax(1) == val[1]).float().mean().item())

    return mon.run(loop)  # the live screen on a terminal (a child process); headless in a pipe


if __name__ == "__main__":
    print(main())
