"""Bad values that start or continue a run: each a one-line error, exit 2, and nothing created (no run
directory, no empty file), where they used to be tracebacks, crashes mid-run or a segfault."""

import json

import pytest
import torch
from engine_helpers import TINY_MOONS, make_engine, run_to_end

from schedtui.cli import main
from schedtui.config import load_config
from schedtui.engine.build import build_run
from schedtui.errors import UserError

SETS = [a for s in TINY_MOONS for a in ("--set", s)]


def refused(capsys, tmp_path, argv, needle):
    runs = tmp_path / "runs"
    where = [] if argv[0] == "resume" else ["--runs-dir", str(runs)]  # resume continues in its own directory
    rc = main([*argv, "--headless", *where, "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("schedtui:") and len(err.strip().splitlines()) == 1, err
    assert needle in err, err
    assert not runs.exists() or not any(runs.iterdir())


def torch_kind(**spec):
    return "schedules.lr=" + "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in spec.items()) + "}"


@pytest.mark.parametrize("args, needle", [
    (["--seed", str(2**63)], "seed: 9223372036854775808 is out of range [0, 9223372036854775807]"),
    (["--seed", str(2**64)], "seed: 18446744073709551616 is out of range"),
    (["--seed", "-1"], "seed: -1 is out of range"),
    (["--set", 'schedules.lr.eta_min="x"'], "CosineAnnealingLR eta_min must be a finite number, got 'x'"),
    (["--set", "schedules.lr.T_max=0"], "CosineAnnealingLR T_max 0 is out of range [1,"),
    (["--set", torch_kind(kind="StepLR", step_size=0)], "StepLR step_size 0 is out of range [1,"),
    (["--set", torch_kind(kind="StepLR", step_size=2.5)], "StepLR step_size must be a whole number, got 2.5"),
    (["--set", torch_kind(kind="StepLR", step_size=2, gamma=True)], "StepLR gamma must be a finite number, got True"),
    (["--set", torch_kind(kind="MultiStepLR", milestones=[3, -1])], "MultiStepLR milestones -1 is out of range"),
    (["--set", torch_kind(kind="CosineAnnealingWarmRestarts", T_0=2, T_mult=0)], "T_mult 0 is out of range [1,"),
    (["--set", torch_kind(kind="OneCycleLR", max_lr=0.1, pct_start=1.5)], "OneCycleLR pct_start 1.5 is out of range [0, 1]"),
    (["--set", torch_kind(kind="OneCycleLR", max_lr=0.1, div_factor=0)], "OneCycleLR div_factor 0 is out of range (0,"),
    (["--set", torch_kind(kind="OneCycleLR", max_lr=[0.1, 0.2])], "a list of one (the schedule drives one value)"),
    (["--set", torch_kind(kind="OneCycleLR", max_lr=0.1, anneal_strategy="cubic")], "must be one of 'cos', 'linear'"),
    (["--set", torch_kind(kind="OneCycleLR", max_lr=0.1, total_steps=2, pct_start=0.5)],
     "torch's OneCycleLR fails with these arguments (ZeroDivisionError"),
    (["--set", torch_kind(kind="CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=0)], "CyclicLR step_size_up 0 is out of range"),
    (["--set", torch_kind(kind="CyclicLR", base_lr=0.01, max_lr=0.01, step_size_up=2, mode="exp_range", gamma=10.0,
                          unit="step"),
      "--epochs", "200"], "cannot be computed at step"),  # 10.0**k overflows a Python float in torch's CyclicLR
    (["--set", torch_kind(kind="LinearLR", start_factor=0)], "LinearLR start_factor 0 is out of range (0, 1]"),
    (["--set", torch_kind(kind="PolynomialLR", total_iters=3, power=-1)], "PolynomialLR power -1 is out of range"),
    (["--set", torch_kind(kind="ReduceLROnPlateau", factor=1.0)], "ReduceLROnPlateau factor 1.0 is out of range [0, 1)"),
    (["--set", torch_kind(kind="ReduceLROnPlateau", patience=-1)], "ReduceLROnPlateau patience -1 is out of range"),
    (["--set", torch_kind(kind="ExponentialLR", gamma=1e300)], "above the allowed range [0, 1e+06]"),
    (["--set", "data.n_samples=100000000000"], "data.n_samples: 100000000000 is out of range [4, 10000000]"),
    (["--set", "model.hidden=[100000000, 100000000]"], "model.hidden: 100000000 is out of range [1, 16384]"),
    (["--set", "model.hidden=[16384, 16384]"], "268,435,456 weights between the hidden layers; at most 100,000,000"),
    (["--set", "engine.threads=100000"], "engine.threads: 100000 is out of range [0, 1024]"),
    (["--set", "optimizer.weight_decay=1e300"], "optimizer.weight_decay: 1e+300 is out of range [0, 1000000]"),
    (["--set", 'schedules.weight_decay={kind="linear", end=1e300}'], "above the allowed range [0, 1e+06]"),
    (["--set", "epochs=1e20"], "epochs: expected int, got 1e+20"),
    (["--epochs", "1e20"], "argument --epochs: invalid int value: '1e20'"),
    (["--epochs", str(10**20)], "epochs: 100000000000000000000 is out of range [1, 1000000]"),
    (["--set", "data.batch_size=1", "--set", "data.n_samples=2000000", "--epochs", "1000"],
     "the run would take 1,600,000,000 optimizer updates (1,600,000 per epoch); at most 1,000,000,000"),
    (["--checkpoint-every", "-1"], "engine.checkpoint_every: -1 is out of range"),
    (["--refresh-hz", "nan"], "argument --refresh-hz: nan is out of range [0.5, 60]"),
    (["--refresh-hz", "fast"], "argument --refresh-hz: 'fast' is not a number"),
    (["--set", "v=" + "[" * 2000], "is not a TOML value"),
])
def test_a_bad_value_is_one_line_and_nothing_is_created(tmp_path, capsys, args, needle):
    refused(capsys, tmp_path, ["moons", *SETS, *args], needle)


def test_a_preset_nested_too_deeply_is_one_line(tmp_path, capsys):
    preset = tmp_path / "deep.toml"
    preset.write_text("v = " + "[" * 200_000 + "]" * 200_000 + "\n")
    refused(capsys, tmp_path, [str(preset)], "nested too deeply")


def test_memory_that_cannot_be_allocated_while_building_is_one_line(tmp_path):
    cfg, _ = load_config("moons", TINY_MOONS)
    cfg["model"]["hidden"] = [10**13]  # 80 TB of weights, past the schema's bounds: what the guard is for
    with pytest.raises(UserError, match=r"not enough memory to build the run \(.*allocate.*\); make it smaller"):
        build_run(cfg, tmp_path)


def test_bad_checkpoints_are_one_line_and_the_run_is_left_alone(tmp_path, capsys):
    engine = make_engine(tmp_path / "src", ["epochs=200"])
    engine.send("stop")
    run_to_end(engine)
    run_dir, log = engine.run_dir, engine.run_dir / "events.jsonl"
    before = log.read_bytes()
    refused(capsys, tmp_path, ["resume", str(run_dir), "--from", "/etc/passwd"], "not a readable schedtui checkpoint")
    good = torch.load(run_dir / "checkpoints" / "step-00000000.pt", weights_only=True)
    for damage, needle in [(lambda s: s.pop("rng"), "no rng"), (lambda s: s["engine"].pop("plan"), "no engine.plan"),
                           (lambda s: s.update(position=[0, 0]), "position is not a table"),
                           (lambda s: s.update(knobs={"lr": "fast"}), "knobs are not numbers"),
                           (lambda s: s.update(step=True), "step is a bool")]:
        state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in good.items()}
        damage(state)
        torch.save(state, run_dir / "checkpoints" / "bad.pt")
        refused(capsys, tmp_path, ["resume", str(run_dir), "--from", "bad.pt"], f"a damaged checkpoint ({needle})")
    assert log.read_bytes() == before


def crafted(tmp_path, config, **header):
    head = {"format": "schedtui-events", "version": 1, "seq": 0, "type": "header", "time": 0.0, "run_id": "r",
            "config": config, "seed": 0, "device": "cpu", **header}
    d = tmp_path / "run"
    d.mkdir(exist_ok=True)
    (d / "checkpoints").mkdir(exist_ok=True)
    (d / "checkpoints" / "step-00000000.pt").write_bytes(b"junk")
    (d / "events.jsonl").write_text(json.dumps(head) + "\n")
    return d


@pytest.mark.parametrize("config, header, needle", [
    ([1, 2], {}, "the header has no config to"),
    ({"name": "x", "epochs": "many"}, {}, "epochs: expected int, got 'many'"),
    ({"name": "x", "epochs": 1, "data": [1]}, {}, "data: expected a table, got [1]"),
    ({"name": "x", "epochs": 1}, {"device": "evil:0"}, "the header's device 'evil:0' is not cpu, cuda or mps"),
    ({"name": "x", "epochs": 1}, {"device": ["cpu"]}, "the header's device ['cpu'] is not cpu"),
    ({"name": "x", "epochs": 1, "seed": 2**70}, {}, "seed: 1180591620717411303424 is out of range"),
])
def test_rerun_and_resume_of_a_bad_header_are_one_line(tmp_path, capsys, config, header, needle):
    d = crafted(tmp_path, config, **header)
    refused(capsys, tmp_path, ["rerun", str(d)], needle)
    refused(capsys, tmp_path, ["resume", str(d)], needle)


@pytest.mark.parametrize("event, needle", [
    ({"type": "edit", "step": 1, "knob": "lr", "op": "set"}, "no 'value'"),
    ({"type": "edit", "step": 1, "knob": "lr", "op": ["set"], "value": 1}, "op: ['set'] is not one of"),
    ({"type": "edit", "step": -1, "knob": "lr", "op": "set", "value": 0.1}, "step: -1 is out of range"),
    ({"type": "eval", "reason": "manual", "step": "x"}, "its eval event (seq 1) cannot be rerun: step: expected int"),
    ({"type": "end", "status": "stopped"}, "its end event (seq 1) cannot be rerun: step: expected int, got None"),
])
def test_rerun_of_a_bad_event_is_one_line(tmp_path, capsys, event, needle):
    d = crafted(tmp_path, {"name": "x", "epochs": 1})
    with open(d / "events.jsonl", "a") as f:
        f.write(json.dumps({"seq": 1, "time": 0.0, **event}) + "\n")
    refused(capsys, tmp_path, ["rerun", str(d)], needle)
