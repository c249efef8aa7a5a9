"""Torch-named schedules give exactly what torch's own class gives, for lr and for other knobs."""

import math

import pytest
import torch

from schedtui.errors import UserError
from schedtui.schedule import KnobSchedules, Timing
from schedtui.schedule.bounds import NONNEGATIVE, UNIT_OPEN

STEPS = 120
CASES = {
    "StepLR": {"step_size": 7, "gamma": 0.5},
    "MultiStepLR": {"milestones": [10, 40, 90], "gamma": 0.3},
    "ExponentialLR": {"gamma": 0.97},
    "CosineAnnealingLR": {"T_max": 50, "eta_min": 1e-5},
    "CosineAnnealingWarmRestarts": {"T_0": 13, "T_mult": 2, "eta_min": 1e-5},
    "OneCycleLR": {"max_lr": 0.3, "total_steps": STEPS, "pct_start": 0.3},
    "CyclicLR": {"base_lr": 0.01, "max_lr": 0.2, "step_size_up": 9, "mode": "triangular2"},
    "LinearLR": {"start_factor": 0.1, "end_factor": 1.0, "total_iters": 30},
    "PolynomialLR": {"total_iters": 80, "power": 2.0},
}


def torch_reference(kind: str, args: dict, start: float, n: int) -> list:
    """What torch's class gives a real optimizer, read before each update (scheduler.step() after optimizer.step())."""
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=start, momentum=0.9)
    sched = getattr(torch.optim.lr_scheduler, kind)(opt, **args)
    out = []
    for i in range(n + 1):
        out.append(opt.param_groups[0]["lr"])
        if i == n:
            break
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    return out


def assert_close_all(ours, ref):
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0), f"step {i}: {a!r} != torch {b!r}"


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("knob,start", [("lr", 0.1), ("weight_decay", 5e-4)])
def test_step_unit_matches_torch(kind, knob, start):
    spec = {"kind": kind, "unit": "step", **CASES[kind]}
    ks = KnobSchedules({knob: start}, {knob: spec}, {knob: NONNEGATIVE}, Timing(10, STEPS))
    ref = torch_reference(kind, CASES[kind], start, STEPS)
    assert_close_all([ks.values(k)[knob] for k in range(STEPS + 1)], ref)
    assert len(set(ref)) > 3  # the case really moves


def test_epoch_unit_steps_torch_once_per_epoch():
    spe, epochs = 7, 12
    args = {"step_size": 3, "gamma": 0.5}
    ks = KnobSchedules({"dropout": 0.4}, {"dropout": {"kind": "StepLR", **args}}, {"dropout": UNIT_OPEN}, Timing(spe, spe * epochs))
    ref = torch_reference("StepLR", args, 0.4, epochs)
    for k in range(spe * epochs):
        assert ks.values(k)["dropout"] == ref[k // spe]


def test_onecycle_fills_total_steps_with_the_run_length():
    ks = KnobSchedules({"lr": 0.1}, {"lr": {"kind": "OneCycleLR", "max_lr": 0.2, "unit": "step"}}, {}, Timing(10, 90))
    ref = torch_reference("OneCycleLR", {"max_lr": 0.2, "total_steps": 90}, 0.1, 89)
    assert_close_all([ks.values(k)["lr"] for k in range(90)], ref)
    assert ks.values(500)["lr"] == ks.values(90)["lr"]  # past torch's last step it holds the last value


def test_reduce_on_plateau_reacts_to_validation_metric():
    spec = {"kind": "ReduceLROnPlateau", "factor": 0.5, "patience": 1}
    ks = KnobSchedules({"lr": 0.1}, {"lr": spec}, {}, Timing(10, 100))
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85]:
        ks.observe({"val_loss": loss})
        ref.step(loss)
        assert ks.values(0)["lr"] == opt.param_groups[0]["lr"]
    assert ks.values(0)["lr"] < 0.1


def test_plateau_on_accuracy_maximises():
    ks = KnobSchedules({"lr": 0.1}, {"lr": {"kind": "ReduceLROnPlateau", "metric": "val_acc", "patience": 0}}, {}, Timing(10, 100))
    ks.observe({"val_acc": 0.5})
    ks.observe({"val_acc": 0.6})  # improving accuracy keeps lr
    assert ks.values(0)["lr"] == 0.1
    ks.observe({"val_acc": 0.55})
    assert ks.values(0)["lr"] == pytest.approx(0.01)


@pytest.mark.parametrize(
    "spec,needle",
    [
        ({"kind": "StepLR", "step_sise": 3}, "no argument 'step_sise'"),
        ({"kind": "StepLR"}, "StepLR"),
        ({"kind": "Cosine"}, "unknown kind 'Cosine'"),
        ({"kind": "OneCycleLR", "max_lr": 2.0, "unit": "steps"}, "unit must be"),
    ],
)
def test_bad_torch_specs_are_one_line_errors(spec, needle):
    with pytest.raises(UserError) as e:
        KnobSchedules({"lr": 0.1}, {"lr": spec}, {}, Timing(10, 100))
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_far_lookups_agree_with_stepping_and_do_not_change_what_the_run_gets(kind):
    n = 6000
    args = dict(CASES[kind])
    if kind == "OneCycleLR":
        args["total_steps"] = n
    spec = {"kind": kind, "unit": "step", **args}
    probe = KnobSchedules({"lr": 0.1}, {"lr": spec}, {}, Timing(10, n))
    far = [probe.values(k, exact=False)["lr"] for k in (5999, 4000, 3000)]  # before anything was stepped
    stepped = KnobSchedules({"lr": 0.1}, {"lr": spec}, {}, Timing(10, n))
    seq = [stepped.values(k)["lr"] for k in range(n)]
    assert far == pytest.approx([seq[5999], seq[4000], seq[3000]], rel=1e-9, abs=1e-15)
    assert [probe.values(k)["lr"] for k in range(n)] == seq  # the run still gets torch's stepped values
    assert probe.values(n - 1, exact=False)["lr"] == seq[-1]  # once stepped, estimates are the cached values


def test_a_long_run_starts_fast():
    import time

    t0 = time.perf_counter()
    ks = KnobSchedules({"lr": 0.1}, {"lr": {"kind": "CosineAnnealingLR", "eta_min": 1e-4, "unit": "step"}}, {}, Timing(100, 1_000_000))
    ks.curve("lr", 0, 64)
    assert time.perf_counter() - t0 < 5.0  # was ~30 s when every check stepped torch's scheduler to the end
    assert ks.next_change("lr", 10) == (11, pytest.approx(ks.values(11)["lr"]))
