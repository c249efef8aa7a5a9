"""Any torch.optim optimizer by class name in a preset, with torch's own argument names; knobs for what it has."""

import pytest

from engine_helpers import make_engine, of_type, run_to_end
from schedtui.cli import main
from test_experiment import only_log

TINY = ["--set", 'device="cpu"', "--set", "data.n_samples=200", "--set", "model.hidden=[16]", "--set", "schedules={}"]


def test_rmsprop_from_a_preset_has_its_alpha_as_a_knob(tmp_path):
    log = run_to_end(make_engine(tmp_path, ['optimizer={kind="RMSprop", lr=0.01, alpha=0.95, momentum=0.5}', "epochs=2",
                                            "schedules={}", 'edits=[{step=6, knob="alpha", op="set", value=0.8}]']))
    steps = of_type(log, "step")
    assert steps[0]["knobs"]["alpha"] == 0.95 and steps[6]["knobs"]["alpha"] == 0.8 and steps[0]["knobs"]["momentum"] == 0.5
    assert log.header["optimizer"]["class"].endswith("RMSprop") and log.header["config"]["optimizer"]["alpha"] == 0.95


def test_lbfgs_from_a_preset_trains_with_a_closure(tmp_path, capsys):
    rc = main(["moons", "--headless", "--epochs", "2", "--runs-dir", str(tmp_path / "r"), *TINY,
               "--set", 'optimizer={kind="LBFGS", lr=0.5, max_iter=3}'])
    assert rc == 0, capsys.readouterr().err
    steps = of_type(only_log(tmp_path / "r"), "step")
    assert "lr" in steps[0]["knobs"] and "momentum" not in steps[0]["knobs"] and len(steps) == 10
    assert all(0 < s["loss"] < 10 for s in steps)


@pytest.mark.parametrize("table, needle", [
    ('{kind="Nope"}', "torch.optim has no optimizer 'Nope'; optimizers: ASGD, Adadelta"),
    ('{kind="LBFGS", rho=0.9}', "optimizer.rho: LBFGS takes no 'rho'; its arguments: lr, max_iter"),
    ('{kind="Adadelta", rho=2.0}', "optimizer: Adadelta(rho=2.0) refused: Invalid rho value: 2.0"),
    ('{kind="Adadelta", rho={a=1}}', "optimizer.rho: expected a number, a boolean, a string or a list of numbers"),
    ('{kind="Adadelta", lr=-1.0}', "optimizer.lr: -1.0 is out of range"),
])
def test_a_wrong_optimizer_is_a_one_line_error(tmp_path, capsys, table, needle):
    rc = main(["moons", "--headless", "--runs-dir", str(tmp_path / "r"), *TINY, "--set", f"optimizer={table}"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
