"""A whole run on the CPU: the log's content, determinism, schedules reaching the live objects."""

import math

import pytest
import torch

from engine_helpers import make_engine, of_type, run_to_end


def test_moons_run_logs_every_update_with_every_knob(tmp_path):
    engine = make_engine(tmp_path, ["epochs=3"])
    log = run_to_end(engine)
    spe = engine.parts.timing.steps_per_epoch
    h = log.header
    assert h["format"] == "schedtui-events" and h["version"] == 2 and h["preset"] == "moons"
    assert h["config"]["epochs"] == 3 and h["seed"] == 0 and h["device"] == "cpu" and "torch" in h["versions"]
    steps = of_type(log, "step")
    assert [e["step"] for e in steps] == list(range(1, 3 * spe + 1))
    knobs = set(engine.parts.knobs)
    assert {"lr", "momentum", "weight_decay", "dropout", "label_smoothing", "grad_clip", "loss@task"} <= knobs
    assert all(set(e["knobs"]) == knobs and math.isfinite(e["loss"]) for e in steps)
    assert [e["epoch"] for e in of_type(log, "epoch")] == [0, 1, 2]
    evals = of_type(log, "eval")
    assert len(evals) == 3 and all(e["split"] == "val" and 0 <= e["acc"] <= 1 for e in evals)
    assert evals[-1]["acc"] > 0.75  # it really learns the moons
    end = log.events[-1]
    assert end["type"] == "end" and end["status"] == "completed" and end["epochs_completed"] == 3
    assert [e["seq"] for e in log.events] == list(range(1, len(log.events) + 1)) and not log.warnings
    assert (engine.run_dir / "config.toml").is_file()


def test_same_seed_gives_bit_identical_losses(tmp_path):
    a = run_to_end(make_engine(tmp_path / "a", ["epochs=2"]))
    b = run_to_end(make_engine(tmp_path / "b", ["epochs=2"]))
    c = run_to_end(make_engine(tmp_path / "c", ["epochs=2", "seed=1"]))
    losses = lambda log: [e["loss"] for e in of_type(log, "step")]  # noqa: E731
    assert losses(a) == losses(b)
    assert losses(a) != losses(c)


def test_torch_schedule_drives_the_real_optimizer_exactly(tmp_path):
    """The lr used for every update equals what torch's OneCycleLR gives the same optimizer."""
    engine = make_engine(tmp_path, ["epochs=2", "schedules.lr={kind='OneCycleLR', max_lr=0.05, unit='step'}",
                                    "schedules.weight_decay={kind='StepLR', step_size=1, gamma=0.5}"])
    used = []
    opt = engine.parts.optimizer
    original = opt.step

    def spy(*a, **k):  # record what the live optimizer holds at each update
        used.append((opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"]))
        return original(*a, **k)

    opt.step = spy
    log = run_to_end(engine)
    total = engine.parts.timing.total_steps
    ref_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01, momentum=0.9)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.05, total_steps=total)
    expected = []
    for _ in range(total):
        expected.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        ref.step()
    assert [u[0] for u in used] == expected
    assert [e["knobs"]["lr"] for e in of_type(log, "step")] == expected
    spe = engine.parts.timing.steps_per_epoch
    assert [u[1] for u in used] == [1e-4] * spe + [0.5e-4] * spe


def test_loss_weights_and_terms_are_logged(tmp_path):
    log = run_to_end(make_engine(tmp_path, ["epochs=1", "loss.terms={task=1.0, l2=0.01, confidence=0.1}",
                                            "schedules.'loss@l2'={kind='linear', end=0.0, unit='step'}"]))
    steps = of_type(log, "step")
    assert set(steps[0]["terms"]) == {"task", "l2", "confidence"}
    first = steps[0]
    total = first["terms"]["task"] + first["knobs"]["loss@l2"] * first["terms"]["l2"] + 0.1 * first["terms"]["confidence"]
    assert first["loss"] == pytest.approx(total, rel=1e-5)
    n = len(steps)
    assert [e["knobs"]["loss@l2"] for e in steps] == pytest.approx([0.01 * (1 - k / n) for k in range(n)])


def test_per_group_lr_follows_the_base_lr(tmp_path):
    engine = make_engine(tmp_path, ["epochs=1", "optimizer.groups=[{name='head', params=['4.*'], lr=0.1}]"])
    log = run_to_end(engine)
    steps = of_type(log, "step")
    assert all(e["knobs"]["lr@head"] == pytest.approx(10 * e["knobs"]["lr"]) for e in steps)
    head = [g for g in engine.parts.optimizer.param_groups if g["name"] == "head"][0]
    assert head["lr"] == pytest.approx(10 * engine.parts.optimizer.param_groups[0]["lr"])


def test_every_update_trains_in_train_mode_after_each_epochs_evaluation(tmp_path):
    """The built-in loop sets train mode at its first epoch and leaves it after that (the evaluations restore
    it); every update of every epoch runs with every module training (dropout on), every evaluation with none."""
    import torch

    engine = make_engine(tmp_path, ["epochs=3", "model.dropout=0.3"])
    model = engine.parts.model
    seen = {"train": [], "eval": []}

    def record(module, args):
        modes = [m.training for m in module.modules()]
        seen["train" if torch.is_grad_enabled() else "eval"].append(modes)

    model.register_forward_pre_hook(record)
    model.eval()  # as a model may come from its factory: the run still trains it in train mode
    log = run_to_end(engine)
    assert len(seen["train"]) == len(of_type(log, "step")) > 0
    assert all(all(modes) for modes in seen["train"])
    assert len(seen["eval"]) >= 3 and not any(any(modes) for modes in seen["eval"])
