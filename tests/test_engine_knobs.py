"""Knobs reach the live objects: metric-driven lr, dropout by module pattern, gradient clipping."""

import torch

from engine_helpers import make_engine, of_type, run_to_end


def test_reduce_on_plateau_lowers_lr_after_a_flat_validation_epoch(tmp_path):
    # threshold=10 (relative): for torch no epoch counts as an improvement (not even the first: best*(1-10) is
    # -inf), so with patience 0 the lr halves after every validation
    engine = make_engine(tmp_path, ["epochs=4", "schedules.lr={kind='ReduceLROnPlateau', factor=0.5, patience=0, threshold=10.0}"])
    log = run_to_end(engine)
    spe = engine.parts.timing.steps_per_epoch
    lrs = [e["knobs"]["lr"] for e in of_type(log, "step")]
    assert lrs[:spe] == [0.01] * spe  # epoch 0 before any validation
    assert lrs[spe:2 * spe] == [0.005] * spe
    assert lrs[2 * spe:3 * spe] == [0.0025] * spe and lrs[3 * spe:] == [0.00125] * spe


def test_dropout_pattern_knob_takes_its_modules_and_plain_dropout_keeps_the_rest(tmp_path):
    engine = make_engine(tmp_path, ["epochs=1", "model.hidden=[8, 8]", "schedules.'dropout@3'={kind='constant', value=0.05}"])
    log = run_to_end(engine)
    mods = dict(engine.parts.model.named_modules())
    assert mods["3"].p == 0.05 and mods["6"].p == engine.parts.knobs["dropout"].get() != 0.05
    assert {"dropout", "dropout@3"} <= set(of_type(log, "step")[0]["knobs"])


def test_grad_clip_bounds_every_update(tmp_path):
    sets = ["epochs=1", "optimizer.kind=SGD", "optimizer.lr=1.0", "optimizer.momentum=0.0", "optimizer.weight_decay=0.0",
            "optimizer.grad_clip=0.001", "schedules={}"]
    engine = make_engine(tmp_path, sets)
    params = list(engine.parts.model.parameters())
    before = torch.cat([p.detach().flatten().clone() for p in params])
    log = run_to_end(engine)
    after = torch.cat([p.detach().flatten() for p in params])
    n = len(of_type(log, "step"))
    assert 0 < (after - before).norm().item() <= n * 0.001 * (1 + 1e-5)
    unclipped = make_engine(tmp_path / "b", sets[:-2] + ["optimizer.grad_clip=0.0", "schedules={}"])
    before = torch.cat([p.detach().flatten().clone() for p in unclipped.parts.model.parameters()])
    run_to_end(unclipped)
    moved = (torch.cat([p.detach().flatten() for p in unclipped.parts.model.parameters()]) - before).norm().item()
    assert moved > 10 * n * 0.001  # without the knob the same run moves much further
