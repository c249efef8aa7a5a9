"""A non-finite loss or gradient never reaches the weights: the update is skipped (each step on the CPU) or made a
no-op on the device (a fused optimizer's found-inf flag, no host sync), and the run pauses with the last good weights."""

import sys
import textwrap

import torch

from engine_helpers import of_type
from schedtui.cli import main
from test_experiment import only_log

FACTORY = """
    import torch
    from torch import nn
    import schedtui

    class InfGrad(torch.autograd.Function):  # finite forward, infinite gradient
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return g * float("inf")

    def data():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 2, generator=g)
        return x, (x[:, 0] > 0).long()

    def bad_gradient():
        torch.manual_seed(0)
        model = nn.Linear(2, 2)

        def step(m, batch, ctx):
            x, y = batch
            out = m(x)
            if ctx.step == 4:  # update 5: the loss is finite, its gradient is not
                out = InfGrad.apply(out)
            return nn.functional.cross_entropy(out, y)

        return schedtui.Experiment(model=model, train=data(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                   train_step=step)

    def fused_blowup():
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        return schedtui.Experiment(model=model, train=data(), loss=lambda o, t: o.exp().sum(),  # overflows in a few steps
                                   optimizer=torch.optim.SGD(model.parameters(), lr=10.0, fused=True))
"""


def write(tmp_path, monkeypatch):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "nonfinite_mod.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    sys.modules.pop("nonfinite_mod", None)


def test_a_finite_loss_with_an_infinite_gradient_is_not_applied(tmp_path, monkeypatch, capsys):
    write(tmp_path, monkeypatch)
    rc = main(["run", "nonfinite_mod:bad_gradient", "--headless", "--set", 'device="cpu"', "--set", "data.batch_size=8",
               "--set", 'engine.on_nonfinite="stop"', "--epochs", "3", "--runs-dir", str(tmp_path / "r")])
    assert rc == 0, capsys.readouterr().err
    log = only_log(tmp_path / "r")
    steps = of_type(log, "step")
    (warn,) = [w for w in of_type(log, "warning") if "non-finite" in w["message"]]
    assert warn["step"] == 5 and "not applied to the weights" in warn["message"] and [s["step"] for s in steps] == [1, 2, 3, 4]
    ck = torch.load(next((log.path.parent / "checkpoints").glob("step-*.pt")), weights_only=True)
    assert ck["step"] == 4 and all(torch.isfinite(v).all() for v in ck["model"].values())


def test_on_the_device_a_fused_optimizer_makes_a_non_finite_update_a_no_op(tmp_path, monkeypatch, capsys):
    write(tmp_path, monkeypatch)
    rc = main(["run", "nonfinite_mod:fused_blowup", "--headless", "--set", 'device="cpu"', "--set", "data.batch_size=8",
               "--set", 'engine.nonfinite_check="device"', "--set", 'engine.on_nonfinite="stop"', "--epochs", "2",
               "--runs-dir", str(tmp_path / "r")])
    assert rc == 0, capsys.readouterr().err
    log = only_log(tmp_path / "r")
    warn = [w for w in of_type(log, "warning") if "non-finite" in w["message"]][0]
    assert "not applied to the weights" in warn["message"]
    ck = torch.load(next((log.path.parent / "checkpoints").glob("step-*.pt")), weights_only=True)
    assert all(torch.isfinite(v).all() for v in ck["model"].values())  # every bad update was a no-op on the device
    bad = main(["run", "nonfinite_mod:bad_gradient", "--headless", "--set", 'device="cpu"',
                "--set", 'engine.nonfinite_check="device"', "--runs-dir", str(tmp_path / "r2")])
    assert bad == 2 and "needs a fused optimizer" in capsys.readouterr().err


def test_a_checkpoint_of_non_finite_weights_is_never_the_latest(tmp_path, monkeypatch, capsys):
    write(tmp_path, monkeypatch)  # checked only at the batched reads: the bad updates reach the weights
    rc = main(["run", "nonfinite_mod:fused_blowup", "--headless", "--set", 'device="cpu"', "--set", "data.batch_size=8",
               "--set", 'engine.nonfinite_check="read"', "--set", 'engine.on_nonfinite="stop"', "--epochs", "2",
               "--set", "engine.checkpoint_every=1", "--runs-dir", str(tmp_path / "r")])
    assert rc == 0, capsys.readouterr().err
    log = only_log(tmp_path / "r")
    folder = log.path.parent / "checkpoints"
    bad = [c for c in of_type(log, "checkpoint") if c.get("nonfinite")]
    assert bad and all(c["path"].endswith(".nonfinite.pt") for c in bad)
    latest = (folder / "latest").read_text().strip() if (folder / "latest").exists() else None
    assert latest is None or not latest.endswith(".nonfinite.pt")
    assert any("holds non-finite weights" in w["message"] for w in of_type(log, "warning"))
    capsys.readouterr()
    rc = main(["resume", str(log.path.parent), "--headless", "--experiment", "nonfinite_mod:fused_blowup"])
    assert rc == 2 and "no checkpoint to resume from" in capsys.readouterr().err  # never the non-finite one by itself
