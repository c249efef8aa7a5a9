"""PyTorch Lightning under schedtui: real `L.Trainer.fit` runs of a tiny module, steered by `schedtui.lightning.Steer`."""

import threading
import time

import lightning as L
import pytest
import torch
from torch import nn

import schedtui.lightning
from engine_helpers import of_type
from schedtui.cli import main
from schedtui.errors import UserError
from schedtui.events import read_log


def data(n=32, batch=8):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)


class Tiny(L.LightningModule):
    """A small nn.Sequential; it records the loss and the lr of every update it ran, as Lightning ran it."""

    def __init__(self, scheduler="step", during=None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 2))
        self.scheduler, self.during = scheduler, during
        self.losses, self.lrs, self.val = [], [], []

    def training_step(self, batch, i):
        if self.during:
            self.during(self, self.trainer.global_step)
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.losses.append(loss.item())
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self.net(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            m = self.trainer.callback_metrics
            self.val.append((float(m["val_loss"]), float(m["val_acc"])))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        if self.scheduler == "step":
            return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 2, 0.5),
                                                       "interval": "step"}}
        if self.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=10.0)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
        return opt


def fit(tmp_path, module, steer=None, val=True, **trainer_args):
    steer = steer or schedtui.lightning.Steer(runs_dir=tmp_path / "runs")
    trainer = L.Trainer(callbacks=[steer], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0,
                        **{"max_epochs": 3, **trainer_args})
    trainer.fit(module, data(), data() if val else None)
    return trainer, read_log(steer.run_dir / "events.jsonl")


@pytest.fixture(scope="module")
def lightning_run(tmp_path_factory):
    torch.manual_seed(0)
    module = Tiny()
    trainer, log = fit(tmp_path_factory.mktemp("lightning"), module)
    return module, trainer, log


def test_every_update_is_logged_with_the_loss_and_the_lr_lightning_used(lightning_run):
    module, trainer, log = lightning_run
    steps = of_type(log, "step")
    assert [s["step"] for s in steps] == list(range(1, 13)) and trainer.global_step == 12
    assert [s["loss"] for s in steps] == pytest.approx(module.losses, rel=1e-6)
    assert [s["knobs"]["lr"] for s in steps] == module.lrs == [0.1 * 0.5 ** (i // 2) for i in range(12)]
    assert {s["knobs"]["dropout"] for s in steps} == {0.25} and {s["knobs"]["momentum"] for s in steps} == {0.9}
    evals = of_type(log, "eval")
    assert [(e["loss"], e["acc"]) for e in evals] == pytest.approx(module.val)
    assert [e["step"] for e in of_type(log, "epoch")] == [4, 8, 12]
    end = of_type(log, "end")[0]
    assert end["status"] == "completed" and end["epochs_completed"] == 3
    assert log.header["driver"] == "lightning" and log.header["own_loop"] is True and log.header["seed"] is None
    assert log.header["knobs"]["lr"] == "your StepLR (stepped by Lightning, per step)"
    assert module.trainer.lr_scheduler_configs[0].scheduler.__class__ is torch.optim.lr_scheduler.StepLR  # given back


def test_a_lightning_run_replays_diffs_and_exports_but_does_not_rerun(lightning_run, tmp_path, capsys):
    log = lightning_run[2]
    run_dir = str(log.path.parent)
    assert main(["replay", run_dir]) == 0
    assert main(["diff", run_dir, run_dir]) == 0
    assert main(["export", run_dir, "--csv", str(tmp_path / "steps.csv")]) == 0
    assert len((tmp_path / "steps.csv").read_text().splitlines()) > 12
    capsys.readouterr()
    assert main(["rerun", run_dir, "--headless", "--runs-dir", str(tmp_path / "re")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Lightning" in err and "no factory to run again" in err and len(err.splitlines()) == 1


def test_an_edit_overrides_lightnings_scheduler_from_its_step_and_revert_goes_back(tmp_path):
    steer = schedtui.lightning.Steer(runs_dir=tmp_path / "runs")

    looked = []

    def during(module, step):  # sent while update step+1 runs: applies at the boundary after it
        if step == 1:
            looked.append(steer.send("describe"))
        elif step == 2:
            steer.send("edit", knob="lr", op="set", value=0.3)
        elif step == 6:
            steer.send("edit", knob="lr", op="revert")

    torch.manual_seed(0)
    module = Tiny(during=during)
    _, log = fit(tmp_path, module, steer)
    steplr = [0.1 * 0.5 ** (i // 2) for i in range(12)]
    assert module.lrs == steplr[:3] + [0.3] * 4 + steplr[7:]  # StepLR's own chain, untouched by the edit
    assert [s["knobs"]["lr"] for s in of_type(log, "step")] == module.lrs
    edits = of_type(log, "edit")
    assert [(e["step"], e["op"]) for e in edits] == [(3, "set"), (7, "revert")]
    assert edits[0]["old"] == 0.05  # what update 4 was to use: commands apply after Lightning stepped StepLR
    assert not of_type(log, "warning")
    # looking ahead (a copy of the scheduler, stepped aside) at step 2: StepLR halves the lr for update 5
    lr = looked[0].result(timeout=1)["knobs"]["lr"]
    assert lr["value"] == 0.05 and lr["next"] == {"step": 4, "value": 0.025, "every_step": False}


def test_a_plateau_scheduler_gets_lightnings_monitor_metric(tmp_path):
    torch.manual_seed(0)
    module = Tiny(scheduler="plateau")
    _, log = fit(tmp_path, module, max_epochs=3)
    # threshold=10 (relative): no evaluation is ever better, so each one halves the lr
    assert module.lrs == [0.1] * 4 + [0.05] * 4 + [0.025] * 4
    assert [s["knobs"]["lr"] for s in of_type(log, "step")] == module.lrs
    assert "ReduceLROnPlateau" in log.header["knobs"]["lr"] and "val_loss" in log.header["knobs"]["lr"]


def test_gradient_accumulation_logs_one_step_per_update_with_its_mean_loss(tmp_path):
    torch.manual_seed(0)
    module = Tiny(scheduler=None)
    trainer, log = fit(tmp_path, module, val=False, max_epochs=2, accumulate_grad_batches=2)
    steps = of_type(log, "step")
    assert len(steps) == trainer.global_step == 4
    means = [(a + b) / 2 for a, b in zip(module.losses[::2], module.losses[1::2])]
    assert [s["loss"] for s in steps] == pytest.approx(means, rel=1e-6)
    assert [e["samples_per_s"] > 0 for e in of_type(log, "epoch")] == [True, True]
    assert not of_type(log, "eval") and of_type(log, "end")[0]["status"] == "completed"


def test_pause_waits_on_the_training_thread_and_stop_ends_the_fit_stopped(tmp_path):
    steer = schedtui.lightning.Steer(runs_dir=tmp_path / "runs")
    seen = {}

    def watch():  # another thread: the run holds still while paused, then goes on when resumed
        try:
            while steer.run.mon.status != "paused":
                time.sleep(0.01)
            step = steer.run.mon.core.step
            time.sleep(0.3)
            seen["held"] = steer.run.mon.core.step == step
        finally:
            steer.send("resume")

    def during(module, step):
        if step == 2:
            threading.Thread(target=watch, daemon=True).start()
            steer.send("pause")
        elif step == 6:
            steer.send("stop")

    torch.manual_seed(0)
    module = Tiny(during=during)
    trainer, log = fit(tmp_path, module, steer, max_epochs=5)
    assert seen["held"] and trainer.should_stop and trainer.global_step == 7
    assert [e["type"] for e in log.events if e["type"] in ("pause", "resume")] == ["pause", "resume"]
    end = of_type(log, "end")[0]
    assert end["status"] == "stopped" and end["step"] == 7
    assert not (steer.run_dir / "checkpoints").exists()


def test_lightnings_own_early_stop_ends_the_run_stopped_with_why(tmp_path):
    torch.manual_seed(0)
    stopper = L.pytorch.callbacks.EarlyStopping("val_loss", patience=0, min_delta=10.0)
    steer = schedtui.lightning.Steer(runs_dir=tmp_path / "runs")
    trainer = L.Trainer(callbacks=[steer, stopper], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0, max_epochs=6)
    trainer.fit(Tiny(scheduler=None), data(), data())
    end = of_type(read_log(steer.run_dir / "events.jsonl"), "end")[0]
    assert end["status"] == "stopped" and end["step"] == trainer.global_step == 8
    assert "Lightning ended the training after 8 of 24 updates" in end["reason"]


def test_an_exception_in_training_ends_the_run_crashed(tmp_path):
    def during(module, step):
        if step == 3:
            raise ValueError("a bug in training_step")

    steer = schedtui.lightning.Steer(runs_dir=tmp_path / "runs")
    with pytest.raises(ValueError, match="a bug in training_step"):
        fit(tmp_path, Tiny(during=during), steer)
    log = read_log(steer.run_dir / "events.jsonl")
    assert of_type(log, "end")[0]["status"] == "crashed" and len(of_type(log, "step")) == 3
    assert of_type(log, "error")[0]["message"] == "ValueError: a bug in training_step"


class TwoOptimizers(Tiny):
    def __init__(self):
        super().__init__(scheduler=None)
        self.automatic_optimization = False

    def training_step(self, batch, i):
        for opt in self.optimizers():
            loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()

    def configure_optimizers(self):
        return [torch.optim.SGD(self.net[0].parameters(), lr=0.1), torch.optim.SGD(self.net[3].parameters(), lr=0.1)]


def test_bad_input_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="screen must be one of 'auto', 'headless'"):
        schedtui.lightning.Steer(screen="live")
    with pytest.raises(UserError, match="runs_dir must be a directory path"):
        schedtui.lightning.Steer(runs_dir=3)
    with pytest.raises(UserError, match="knobs must be a list of schedtui.Knob"):
        schedtui.lightning.Steer(knobs=["lr"])
    with pytest.raises(UserError, match="2 optimizers; Steer drives one for now .*coming"):
        fit(tmp_path, TwoOptimizers(), val=False)
    with pytest.raises(UserError, match="no knob named 'lrr'"):
        fit(tmp_path, Tiny(), schedtui.lightning.Steer(runs_dir=tmp_path / "r", schedules={"lrr": {"kind": "constant"}}))
