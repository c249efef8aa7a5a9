"""SWA, EMA and early stopping as components: they do what torch's swa_utils would, step for step."""

import copy

import pytest
import torch
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn

from schedtui.config import load_config
from schedtui.engine.averaging import Averaging, swa_start_step
from schedtui.engine.early_stop import EarlyStopping
from schedtui.engine.models import mlp
from schedtui.errors import UserError
from schedtui.schedule import Timing
from schedtui.schedule.spec import build_schedule


def net(bn: bool = True):
    torch.manual_seed(0)
    return mlp(2, 1, [8], 0.0, "relu", batchnorm=bn)


def nudge(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g))


def test_swa_average_equals_averaged_model_update_parameters():
    model = net()
    avg = Averaging(model, {"swa": {"start": None, "anneal_epochs": 2, "anneal_strategy": "cos", "update_every": 2,
                                    "update_unit": "epoch"}}, Timing(10, 100))
    ref = AveragedModel(copy.deepcopy(model))
    avg.start(step=0)
    for epoch in range(7):
        nudge(model, epoch)
        if avg.after_epoch() is not None:
            ref.update_parameters(model)
    assert avg.n_averaged == 3  # every second epoch end
    for a, b in zip(avg.swa.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    assert avg.stop()["n_averaged"] == 3
    nudge(model, 99)
    assert avg.after_epoch() is None  # stopped: no more averaging, the average stays
    with pytest.raises(UserError, match="not averaging"):
        avg.stop()


def test_swa_by_steps_and_update_bn_recomputes_batchnorm_without_touching_the_training_rng():
    model = net()
    avg = Averaging(model, {"swa": {"start": None, "anneal_epochs": 0, "anneal_strategy": "linear", "update_every": 3,
                                    "update_unit": "step"}}, Timing(10, 100))
    avg.start(step=5)
    updates = [s for s in range(6, 15) if avg.after_update(s) is not None]
    assert updates == [8, 11, 14]
    x = torch.randn(64, 2) * 3 + 1
    loader = [(x[i:i + 16], torch.zeros(16)) for i in range(0, 64, 16)]  # (input, target) batches
    bn = [m for m in avg.swa.modules() if isinstance(m, torch.nn.BatchNorm1d)][0]
    torch.manual_seed(123)
    assert avg.update_bn(loader)
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(1))  # the training's random stream is where it was
    ref = copy.deepcopy(avg.swa)
    torch.optim.swa_utils.update_bn(loader, ref)
    assert torch.equal(bn.running_mean, [m for m in ref.modules() if isinstance(m, torch.nn.BatchNorm1d)][0].running_mean)
    assert not Averaging(net(bn=False), {}, Timing(10, 100)).update_bn(loader)  # nothing averaged yet


def test_ema_follows_torch_ema_at_the_decay_knob_of_the_moment():
    model = net()
    avg = Averaging(model, {"ema": {"decay": 0.9}}, Timing(10, 100))
    knobs, initial = avg.knobs()
    assert initial == {"ema_decay": 0.9}
    ref_a = AveragedModel(copy.deepcopy(model), multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    for s in range(1, 4):
        nudge(model, s)
        avg.after_update(s)
        ref_a.update_parameters(model)
    for a, b in zip(avg.ema.parameters(), ref_a.parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-7)
    knobs["ema_decay"].set(0.5)  # edited: the next update uses the new decay
    before = [p.clone() for p in avg.ema.parameters()]
    nudge(model, 10)
    avg.after_update(4)
    for p_avg, p0, p_model in zip(avg.ema.parameters(), before, model.parameters()):
        assert torch.allclose(p_avg, 0.5 * p0 + 0.5 * p_model, atol=1e-6)


def test_swalr_kind_equals_torch_swalr_epoch_by_epoch():
    timing = Timing(7, 700)
    sched = build_schedule({"kind": "SWALR", "swa_lr": 0.01, "anneal_epochs": 4, "anneal_strategy": "cos", "unit": "epoch"},
                           knob="lr", start=0.2, timing=timing, origin=33)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    ref = SWALR(opt, swa_lr=0.01, anneal_epochs=4, anneal_strategy="cos")
    for epoch in range(8):
        for k in range(7):
            assert sched.value(epoch * 7 + k) == opt.param_groups[0]["lr"]
        opt.step()
        ref.step()


def test_swa_start_is_an_epoch_or_a_fraction_of_the_run():
    t = Timing(25, 25 * 30)
    assert swa_start_step({"start": 0.6}, t) == 450 and swa_start_step({"start": 20.0}, t) == 500
    assert swa_start_step({"start": 2.5}, t) == 62 and swa_start_step({}, t) is None
    with pytest.raises(UserError, match="past the run's end"):
        swa_start_step({"start": 31.0}, t)


def test_early_stopping_counts_misses_restores_the_best_and_patience_is_a_knob():
    model = net()
    cfg, _ = load_config("moons", ["early_stopping.patience=2", "early_stopping.min_delta=0.01"])
    es = EarlyStopping(cfg["early_stopping"], model)
    assert es.observe({"val_loss": 1.0}, 10) is None
    best = [p.clone() for p in model.parameters()]
    nudge(model, 1)
    assert es.observe({"val_loss": 0.995}, 20) is None  # not better by min_delta: one miss
    knobs, _ = es.knobs()
    knobs["patience"].set(3.0)  # edited live: one more chance
    assert es.observe({"val_loss": 1.2}, 30) is None
    ev = es.observe({"val_loss": float("nan")}, 40)
    assert ev == {"metric": "val_loss", "best": 1.0, "best_step": 10, "patience": 3, "evaluations_without_improvement": 3,
                  "restored": True}
    es.restore()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), best))
    acc = EarlyStopping({"patience": 0, "min_delta": 0.0, "metric": "val_acc", "restore_best": False}, model)
    assert acc.observe({"val_acc": 0.5}, 1) is None and acc.observe({"val_acc": 0.6}, 2) is None
    assert acc.observe({"val_acc": 0.6}, 3)["restored"] is False  # patience 0: the first miss stops
