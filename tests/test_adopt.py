"""Adopt, never overwrite: a run of your own loop keeps what you set, and its log records what really trained."""

import random

import pytest
import torch
from torch import nn

import schedtui
from engine_helpers import of_type
from schedtui.errors import UserError
from schedtui.events import read_log


class MnistNet(nn.Module):
    """The shape of pytorch/examples' MNIST network: two dropouts, 0.25 and 0.5."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.dropout1 = nn.Dropout(0.25)
        self.fc = nn.Linear(4 * 26 * 26, 10)
        self.dropout2 = nn.Dropout(0.5)

    def forward(self, x):
        x = self.dropout1(torch.relu(self.conv(x)))
        return self.dropout2(self.fc(x.flatten(1)))


def log_of(mon):
    return read_log(mon.run_dir / "events.jsonl")


def train(mon, model, opt, steps, x, y, during=None, epoch_every=None):
    """Your loop: the lr and the dropouts each update used, read off the live objects."""
    used = []
    for i in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        used.append((opt.param_groups[0]["lr"], model.dropout1.p, model.dropout2.p) if isinstance(model, MnistNet)
                    else opt.param_groups[0]["lr"])
        opt.step()
        mon.step(loss, batch_size=len(y))
        if during:
            during(mon.core.step)
        if epoch_every and (i + 1) % epoch_every == 0:
            mon.epoch()
    return used


def test_two_dropouts_keep_their_own_values_until_an_edit_names_them(tmp_path):
    torch.manual_seed(0)
    model = MnistNet()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    mon = schedtui.monitor(model, opt, epochs=1, steps_per_epoch=40, runs_dir=tmp_path / "runs")
    edits = {10: dict(knob="dropout", op="scale", factor=0.5), 20: dict(knob="dropout", op="set", value=0.3),
             30: dict(knob="dropout", op="revert")}

    def steer(step):
        if step in edits:
            mon.send("edit", **edits[step])  # applies at the next boundary: updates step+2 on

    with mon:
        used = train(mon, model, opt, 40, x, y, during=steer)
    drops = [(d1, d2) for _, d1, d2 in used]
    assert drops[0] == (0.25, 0.5)  # nothing written at the start
    assert drops[11] == (0.125, 0.25) and drops[21] == (0.3, 0.3)  # scale: each its own value; set: both
    assert drops[10] == (0.25, 0.5) and drops[31:] == [(0.25, 0.5)] * 9  # revert: back to the adopted values
    log = log_of(mon)
    logged = [s["knobs"]["dropout"] for s in of_type(log, "step")]
    assert logged == [max(d) for d in drops]  # the knob shows the largest, as the live modules held it
    assert [e["op"] for e in of_type(log, "edit")] == ["scale", "set", "revert"]


def test_your_steplr_is_adopted_and_the_log_has_the_lr_every_update_used(tmp_path):
    torch.manual_seed(0)
    model = MnistNet()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    mon = schedtui.monitor(model, opt, epochs=4, steps_per_epoch=5, runs_dir=tmp_path / "runs", scheduler=sched)
    with mon:
        used = train(mon, model, opt, 20, x, y, epoch_every=5)
    lrs = [u[0] for u in used]
    assert lrs[:6] == [1.0] * 5 + [0.7] and lrs[-1] == pytest.approx(0.7 ** 3)  # stepped per epoch, as StepLR is
    log = log_of(mon)
    assert [s["knobs"]["lr"] for s in of_type(log, "step")] == lrs  # exactly what the optimizer used
    assert not [w for w in of_type(log, "warning")]
    assert "StepLR" in log.header["knobs"]["lr"] and sched.last_epoch == 4  # your scheduler, stepped by schedtui
    assert log.header["optimizer"]["class"].endswith("Adadelta") and log.header["optimizer"]["groups"][0]["lr"] == 1.0
    assert log.header["model"]["class"].endswith("MnistNet") and log.header["own_loop"] is True


def test_an_edit_overrides_your_scheduler_and_revert_goes_back_to_it(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    mon = schedtui.monitor(model, opt, epochs=6, steps_per_epoch=2, runs_dir=tmp_path / "runs", scheduler=sched)

    def steer(step):
        if step == 4:
            mon.send("edit", knob="lr", op="set", value=0.3)
        if step == 8:
            mon.send("edit", knob="lr", op="revert")

    with mon:
        used = train(mon, model, opt, 12, x, y, during=steer, epoch_every=2)
    # StepLR alone: 0.1, 0.05, 0.025 ... per epoch; the set holds 0.3 for updates 5-8; then StepLR's own again
    assert used[:4] == [0.1, 0.1, 0.05, 0.05] and used[4:8] == [0.3] * 4
    assert used[8:] == [0.1 * 0.5 ** 4] * 2 + [0.1 * 0.5 ** 5] * 2  # its chain was not disturbed by the edit
    assert [s["knobs"]["lr"] for s in of_type(log_of(mon), "step")] == used


def test_a_change_behind_schedtuis_back_is_logged_as_it_was_with_a_warning(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    mon = schedtui.monitor(model, opt, epochs=1, steps_per_epoch=12, runs_dir=tmp_path / "runs")

    def meddle(step):
        if step == 5:
            opt.param_groups[0]["lr"] = 0.123  # a scheduler schedtui does not know

    with mon:
        used = train(mon, model, opt, 12, x, y, during=meddle)
    log = log_of(mon)
    assert [s["knobs"]["lr"] for s in of_type(log, "step")] == used == [0.1] * 5 + [0.123] * 7
    (w,) = of_type(log, "warning")  # once, until they agree again
    assert w["knob"] == "lr" and w["step"] == 6 and w["expected"] == 0.1 and w["actual"] == 0.123
    assert "changed outside schedtui" in w["message"]


def test_monitor_does_not_reseed_unless_asked(tmp_path):
    torch.manual_seed(1234)
    random.seed(99)
    model = nn.Linear(2, 2)
    before = (torch.get_rng_state().clone(), random.getstate())
    with schedtui.monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, steps_per_epoch=1,
                          runs_dir=tmp_path / "runs") as mon:
        assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
        mon.step(0.5)
    assert log_of(mon).header["seed"] is None
    with schedtui.monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, steps_per_epoch=1,
                          runs_dir=tmp_path / "runs2", seed=7) as mon:
        assert torch.equal(torch.get_rng_state(), torch.manual_seed(7).get_state())
        mon.step(0.5)


def test_float_losses_terms_and_overrunning_the_plan(tmp_path):
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UserError, match=r"update 4 is past the planned run \(1 epochs x 3 steps = 3 updates\)"):
        with schedtui.monitor(model, opt, epochs=1, steps_per_epoch=3, runs_dir=tmp_path / "runs") as mon:
            mon.step(0.5)
            mon.step(torch.tensor(0.25), terms={"bce": torch.tensor(0.2), "kld": 0.05})
            mon.step(0.125, terms={"bce": 0.1, "kld": 0.025})
            mon.step(0.1)
    log = log_of(mon)
    steps = of_type(log, "step")
    assert [s["loss"] for s in steps] == [0.5, 0.25, 0.125]
    assert steps[1]["terms"] == {"bce": pytest.approx(0.2), "kld": 0.05} and steps[2]["terms"] == {"bce": 0.1, "kld": 0.025}
    assert of_type(log, "end")[0]["status"] == "crashed" and "past the planned run" in of_type(log, "error")[0]["message"]


@pytest.mark.parametrize("kind, args, has, lacks", [
    ("LBFGS", {"lr": 0.5}, ["lr"], ["weight_decay", "momentum"]),
    ("Rprop", {"lr": 0.01}, ["lr"], ["weight_decay", "momentum"]),
    ("SparseAdam", {"lr": 0.01}, ["lr", "momentum"], ["weight_decay"]),
    ("Adadelta", {"lr": 1.0, "weight_decay": 0.1}, ["lr", "weight_decay"], ["momentum"]),
])
def test_knobs_exist_for_the_settings_an_optimizer_really_has(tmp_path, kind, args, has, lacks):
    model = nn.Embedding(4, 2, sparse=True) if kind == "SparseAdam" else nn.Linear(2, 2)
    opt = getattr(torch.optim, kind)(model.parameters(), **args)
    with schedtui.monitor(model, opt, epochs=1, steps_per_epoch=1, runs_dir=tmp_path / "ok") as mon:
        assert set(has) <= set(mon.core.values) and not set(lacks) & set(mon.core.values)
        mon.step(0.1)
    with pytest.raises(UserError, match=f"no knob named '{lacks[0]}'; knobs: lr"):
        with schedtui.monitor(model, opt, epochs=1, steps_per_epoch=1, runs_dir=tmp_path / "bad",
                              schedules={lacks[0]: {"kind": "linear", "end": 0.0}}):
            pass


def test_momentum_is_read_and_written_per_parameter_group(tmp_path):
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = torch.optim.SGD([{"params": a.parameters()}, {"params": b.parameters(), "momentum": 0.5, "name": "head"}],
                          lr=0.1, momentum=0.9)
    with schedtui.monitor(nn.Sequential(a, b), opt, epochs=1, steps_per_epoch=2, runs_dir=tmp_path / "r") as mon:
        assert mon.core.values["momentum"] == 0.9 and mon.core.values["momentum@head"] == 0.5
        mon.send("edit", knob="momentum", op="set", value=0.8)
        mon.step(0.1)
        mon.step(0.1)
    assert [g["momentum"] for g in opt.param_groups] == [0.8, pytest.approx(0.5 * 0.8 / 0.9)]  # the head follows at its ratio
    assert "name" not in opt.param_groups[0]  # nothing written into your param groups


def test_a_command_that_raises_answers_its_sender_and_the_run_goes_on(tmp_path):
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    box = {"w": 1.0}

    def set_w(v):
        if v > 5:
            raise RuntimeError("the user's setter broke")
        box["w"] = v

    knob = schedtui.Knob("w", lambda: box["w"], set_w, (0, 10))
    with schedtui.monitor(model, opt, epochs=1, steps_per_epoch=50, knobs=[knob], runs_dir=tmp_path / "r") as mon:
        fut = mon.send("edit", knob="w", op="set", value=7.0)
        mon.step(0.1)
        with pytest.raises(UserError, match="edit failed: RuntimeError: the user's setter broke"):
            fut.result(5)
        for _ in range(9):
            mon.step(0.1)
        described = mon.send("describe")
        mon.step(0.1)
        assert described.result(5)["knobs"]["w"]["value"] == 1.0  # nothing changed, and queries still answer
    log = log_of(mon)
    assert len(of_type(log, "step")) == 11 and of_type(log, "end")[0]["status"] == "completed"
    assert any("edit failed" in w["message"] or "command edit failed" in w["message"] for w in of_type(log, "warning"))


def test_your_loop_with_two_optimizers_has_a_knob_for_each(tmp_path):
    torch.manual_seed(0)
    g, d = nn.Linear(4, 2), nn.Linear(2, 1)
    opts = {"G": torch.optim.Adam(g.parameters(), lr=1e-3), "D": torch.optim.SGD(d.parameters(), lr=0.1, momentum=0.5)}
    used = []
    with schedtui.monitor(nn.ModuleDict({"G": g, "D": d}), opts, epochs=1, steps_per_epoch=6,
                          runs_dir=tmp_path / "r") as mon:
        assert {"lr@G", "lr@D", "momentum@G", "momentum@D"} <= set(mon.core.values) and "lr" not in mon.core.values
        for i in range(6):
            if i == 2:
                mon.send("edit", knob="lr@D", op="set", value=0.05)
            loss_d = d(g(torch.randn(8, 4))).mean()
            opts["D"].zero_grad()
            loss_d.backward()
            opts["D"].step()
            used.append(opts["D"].param_groups[0]["lr"])
            mon.step(loss_d, terms={"d": loss_d})
    log = log_of(mon)
    assert [s["knobs"]["lr@D"] for s in of_type(log, "step")] == used == [0.1] * 3 + [0.05] * 3
    assert all(s["knobs"]["lr@G"] == 1e-3 for s in of_type(log, "step")) and set(log.header["optimizer"]) == {"G", "D"}
