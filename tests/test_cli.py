"""The `schedtui` command as a user runs it: real processes, exit codes, one-line errors."""

import subprocess
import sys

import pytest

from cifar_fixture import make_fake_cifar
from schedtui.events import read_log


def schedtui(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "schedtui", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def test_help_lists_the_options():
    r = schedtui("--help")
    assert r.returncode == 0
    for opt in ("--headless", "--set", "--epochs", "--seed", "--device", "--data-dir", "--runs-dir", "presets"):
        assert opt in r.stdout


def test_presets_lists_names_with_descriptions():
    r = schedtui("presets")
    assert r.returncode == 0
    lines = {line.split()[0]: line for line in r.stdout.splitlines()}
    assert "moons" in lines and "cifar10" in lines and "half-moons" in lines["moons"]


def test_moons_headless_end_to_end(tmp_path):
    r = schedtui("moons", "--headless", "--epochs", "3", "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    assert "completed" in r.stdout and "val accuracy" in r.stdout
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("moons-") and (run / "config.toml").is_file()
    log = read_log(run / "events.jsonl")
    steps = [e for e in log.events if e["type"] == "step"]
    assert len(steps) == 3 * log.header["steps_per_epoch"] and all("dropout" in e["knobs"] for e in steps)
    assert [e["type"] for e in log.events].count("epoch") == 3
    assert log.events[-1] == {**log.events[-1], "type": "end", "status": "completed"}


@pytest.mark.parametrize(
    "args,needle",
    [
        (["moonz"], "unknown preset 'moonz'; valid presets: "),
        (["moons", "--set", "model.dropout=1.5"], "model.dropout: 1.5 is out of range"),
        (["moons", "--set", "optimizer.lr=-1"], "optimizer.lr: -1.0 is out of range"),
        (["moons", "--set", "optimizer.lr=nan"], "not a finite number"),
        (["moons", "--set", "schedules.lr.kind=Cosine"], "unknown kind 'Cosine'; valid kinds: constant"),
        (["moons", "--set", "schedules.dropuot.kind=constant"], "no knob named 'dropuot'; knobs: lr"),
        (["moons", "--set", "optimizer.bogus=1"], "optimizer.bogus: unknown key"),
        (["moons", "--epochs", "x"], "invalid int value"),
        (["moons", "--device", "tpu"], "invalid choice"),
        (["moons", "--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_started(tmp_path, args, needle):
    r = schedtui(*args, "--headless", "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 2
    assert needle in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_malformed_preset_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = \n")
    r = schedtui(str(bad), "--headless", "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 2 and str(bad) in r.stderr and "line 1" in r.stderr and r.stderr.count("\n") == 1


def test_cifar10_offline_says_where_to_put_the_data(tmp_path):
    r = schedtui("cifar10", "--headless", "--device", "cpu", "--data-dir", str(tmp_path / "nodata"),
                 "--set", "data.download=false", "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert str(tmp_path / "nodata") in r.stderr and "cifar-10-batches-py" in r.stderr


def test_cifar10_preset_runs_on_a_cifar_format_folder(tmp_path):
    make_fake_cifar(tmp_path / "data", n_train_per_batch=40, n_test=40)
    r = schedtui("cifar10", "--headless", "--device", "cpu", "--epochs", "2", "--data-dir", str(tmp_path / "data"),
                 "--set", "data.verify=false", "--set", "data.batch_size=50", "--set", "model.width=4",
                 "--runs-dir", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    (run,) = (tmp_path / "runs").iterdir()
    log = read_log(run / "events.jsonl")
    steps = [e for e in log.events if e["type"] == "step"]
    assert len(steps) == 2 * 4  # 200 images, batches of 50, last partial batch dropped
    assert {"lr", "bn_momentum", "dropout", "label_smoothing"} <= set(steps[0]["knobs"])
    assert steps[10 // 2]["knobs"]["bn_momentum"] == pytest.approx(0.25 * steps[10 // 2]["knobs"]["lr"])
    assert log.events[-1]["status"] == "completed"
