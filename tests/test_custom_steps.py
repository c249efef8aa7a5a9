"""Any training step: closures (LBFGS), a GAN's two optimizers and manual step, a stateful LSTM, a two-term VAE.

Each example runs on generated data in seconds; edits apply, and reruns (and a resume) are bit-identical."""

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from engine_helpers import of_type
from schedtui.cli import main
from schedtui.events import read_log
from test_experiment import only_log

ROOT = Path(__file__).resolve().parents[1]


def run(tmp_path, name, *extra, runs="a"):
    rc = main(["run", f"examples.{name}:experiment", "--preset", str(ROOT / "examples" / f"{name}.toml"), "--headless",
               "--runs-dir", str(tmp_path / runs), *extra])
    return rc, only_log(tmp_path / runs) if (tmp_path / runs).exists() else None


def rerun(tmp_path, log, name, runs="b", *extra):
    rc = main(["rerun", str(log.path), "--headless", *EXP(name),
               "--runs-dir", str(tmp_path / runs), *extra])
    return rc, only_log(tmp_path / runs)


def EXP(name):  # rerun and resume import a factory only when the command line names it
    return ["--experiment", f"examples.{name}:experiment"]


def values(log):
    return [(s["step"], s["loss"], s.get("terms"), s["knobs"]) for s in of_type(log, "step")]


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_lbfgs_is_stepped_with_a_closure_and_the_log_has_its_first_evaluation(tmp_path, capsys):
    rc, log = run(tmp_path, "sequence_lbfgs", "--epochs", "3")
    assert rc == 0, capsys.readouterr().err
    steps = of_type(log, "step")
    assert len(steps) == 3 and steps[-1]["loss"] < steps[0]["loss"]
    from examples.sequence_lbfgs import experiment

    exp = experiment({"seed": 0})  # the same model and data: update 1's loss is the untrained model's MSE
    x, y = exp.train
    assert steps[0]["loss"] == pytest.approx(torch.nn.functional.mse_loss(exp.model(x), y).item(), rel=1e-6)
    assert rerun(tmp_path, log, "sequence_lbfgs")[1] and values(rerun(tmp_path, log, "sequence_lbfgs", "c")[1]) == values(log)


def test_a_gan_has_a_knob_per_optimizer_logs_both_losses_and_resumes_exactly(tmp_path, capsys):
    sets = ["--epochs", "4", "--set", 'edits=[{step=10, knob="lr@G", op="set", value=1e-3}]']
    rc, log = run(tmp_path, "gan", *sets)
    assert rc == 0, capsys.readouterr().err
    steps = of_type(log, "step")
    assert {"lr@G", "lr@D", "momentum@G", "momentum@D"} <= set(steps[0]["knobs"]) and "lr" not in steps[0]["knobs"]
    assert set(steps[0]["terms"]) == {"d", "g"} and steps[0]["loss"] == pytest.approx(sum(steps[0]["terms"].values()), rel=1e-6)
    assert steps[9]["knobs"]["lr@G"] == 2e-3 and steps[10]["knobs"]["lr@G"] == 1e-3  # the planned edit, from update 11
    assert steps[-1]["knobs"]["lr@D"] < steps[0]["knobs"]["lr@D"]  # the preset's schedule of one optimizer's lr
    assert set(log.header["optimizer"]) == {"G", "D"}
    rc, part = rerun(tmp_path, log, "gan", "b", "--until", "13")  # stops mid-epoch, with a checkpoint
    assert rc == 0 and of_type(part, "end")[0]["status"] == "stopped"
    assert main(["resume", str(part.path.parent), "--headless", *EXP("gan")]) == 0
    resumed = read_log(part.path)
    assert [v for v in values(resumed)] == values(log)  # two optimizers' states came back exactly


def test_a_stateful_lstm_carries_its_hidden_state_in_ctx_and_resumes_exactly(tmp_path, capsys):
    rc, log = run(tmp_path, "lstm_lm", "--epochs", "3")
    assert rc == 0, capsys.readouterr().err
    steps = of_type(log, "step")
    spe = log.header["steps_per_epoch"]
    assert len(steps) == 3 * spe and "ppl" in of_type(log, "eval")[0]["metrics"]
    assert steps[-1]["loss"] < steps[0]["loss"] and of_type(log, "eval")[-1]["acc"] > 0.1
    rc, part = rerun(tmp_path, log, "lstm_lm", "b", "--until", str(spe + 3))  # mid-epoch: ctx.hidden is live state
    assert rc == 0
    assert main(["resume", str(part.path.parent), "--headless", *EXP("lstm_lm")]) == 0
    assert values(read_log(part.path)) == values(log)


def test_a_vae_logs_both_terms_and_its_kl_weight_is_a_scheduled_knob(tmp_path, capsys):
    rc, log = run(tmp_path, "vae", "--epochs", "5", "--set", 'edits=[{step=30, knob="kl_weight", op="set", value=0.5}]')
    assert rc == 0, capsys.readouterr().err
    steps = of_type(log, "step")
    assert set(steps[0]["terms"]) == {"bce", "kld"} and steps[0]["knobs"]["kl_weight"] == 0.0
    assert 0 < steps[12]["knobs"]["kl_weight"] < 1 and steps[30]["knobs"]["kl_weight"] == 0.5
    s = steps[20]
    assert s["loss"] == pytest.approx(s["terms"]["bce"] + s["knobs"]["kl_weight"] * s["terms"]["kld"], rel=1e-5)
    assert values(rerun(tmp_path, log, "vae")[1]) == values(log)


BAD = """
    import torch
    from torch import nn
    import schedtui

    def exp(step, **kw):
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        return schedtui.Experiment(model=model, train=(torch.randn(8, 2), torch.randint(0, 2, (8,))), train_step=step,
                                   optimizer=kw.pop("optimizer", torch.optim.SGD(model.parameters(), lr=0.1)), **kw)

    def text():
        return exp(lambda m, b, c: "low")

    def no_loss():
        return exp(lambda m, b, c: {"bce": m(b[0]).sum()})

    def not_scalar():
        return exp(lambda m, b, c: m(b[0]))

    def not_an_optimizer():
        return exp(lambda m, b, c: m(b[0]).sum(), manual=True, optimizer={"G": torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), "D": "adam"})
"""


@pytest.mark.parametrize("fn, needle", [
    ("text", "train_step must be a scalar tensor to backpropagate, got str"),
    ("no_loss", "train_step returned a dict without 'loss' (the one to backpropagate); keys: bce"),
    ("not_scalar", "train_step must be a scalar (one value), got a tensor of shape (8, 2)"),
    ("not_an_optimizer", "optimizer 'D': expected a torch.optim.Optimizer, got str"),
])
def test_a_wrong_train_step_or_optimizer_is_a_one_line_error(tmp_path, monkeypatch, capsys, fn, needle):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "bad_steps.py").write_text(textwrap.dedent(BAD))
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    sys.modules.pop("bad_steps", None)
    rc = main(["run", f"bad_steps:{fn}", "--headless", "--set", 'device="cpu"', "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err, err
    assert len([line for line in err.splitlines() if line.startswith("schedtui:")]) == 1
