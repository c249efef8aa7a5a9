"""Your own model under schedtui: `schedtui run module:function`, factories, custom knobs, and their errors."""

import gzip
import struct
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from engine_helpers import of_type
from schedtui.cli import main
from schedtui.events import read_log

ROOT = Path(__file__).resolve().parents[1]


def only_log(runs: Path):
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    return read_log(run / "events.jsonl")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Write a module `usermod_<n>` into a directory on sys.path; returns its import name."""
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    (tmp_path / "mods").mkdir()
    count = iter(range(100))

    def write(body: str) -> str:
        name = f"usermod_{tmp_path.name[-12:].replace('-', '_')}_{next(count)}"
        (tmp_path / "mods" / f"{name}.py").write_text(textwrap.dedent(body))
        sys.modules.pop(name, None)
        return name

    return write


FACTORIES = """
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    import schedtui

    def data():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(96, 4, generator=g)
        y = (x[:, 0] + x[:, 1] > 0).long()
        return x, y

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))

    def from_dataset():
        x, y = data()
        return schedtui.Experiment(model=net(), train=TensorDataset(x[:64], y[:64]), val=TensorDataset(x[64:], y[64:]))

    def from_loader(cfg):
        x, y = data()
        loader = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16)
        return {"model": net(), "train": loader, "val": (x[64:], y[64:]),
                "optimizer": {"kind": "Adam", "lr": 0.003}, "metrics": {"top1": lambda o, t: (o.argmax(-1) == t).float().mean()}}

    class Temp:
        t = 1.0

    def with_knob():
        x, y = data()
        model, temp = net(), Temp()
        opt = torch.optim.RMSprop(model.parameters(), lr=0.01)
        loss = lambda out, target: nn.functional.cross_entropy(out / temp.t, target)
        knob = schedtui.Knob("temperature", lambda: temp.t, lambda v: setattr(temp, "t", v), (0.1, 10.0))
        return schedtui.Experiment(model=model, train=(x[:64], y[:64]), val=(x[64:], y[64:]), optimizer=opt, loss=loss,
                                   knobs=[knob])
"""


def test_a_factory_of_datasets_runs_with_the_presets_schedules_and_reruns_bit_for_bit(tmp_path, user_module, capsys):
    mod = user_module(FACTORIES)
    sets = ["--set", "device=\"cpu\"", "--set", "data.batch_size=16", "--epochs", "3",
            "--set", 'schedules.dropout={kind="linear", end=0.0, unit="epoch"}', "--set", "swa.start=2"]
    assert main(["run", f"{mod}:from_dataset", "--headless", "--runs-dir", str(tmp_path / "a"), *sets]) == 0, capsys.readouterr().err
    log = only_log(tmp_path / "a")
    steps = of_type(log, "step")
    assert len(steps) == 12 and log.header["config"]["experiment"] == f"{mod}:from_dataset"
    assert steps[0]["knobs"]["dropout"] == 0.1 and steps[-1]["knobs"]["dropout"] < 0.05  # the preset's schedule drives it
    assert {e["model"] for e in of_type(log, "eval")} == {"raw", "swa"} and 0 <= of_type(log, "eval")[-1]["acc"] <= 1
    assert main(["rerun", str(log.path), "--headless", "--runs-dir", str(tmp_path / "b"),
                 "--experiment", f"{mod}:from_dataset"]) == 0  # a log is data: the user names what it imports
    again = only_log(tmp_path / "b")
    assert [(s["loss"], s["knobs"]) for s in of_type(again, "step")] == [(s["loss"], s["knobs"]) for s in steps]


def test_own_loader_optimizer_settings_and_metrics(tmp_path, user_module, capsys):
    mod = user_module(FACTORIES)
    assert main(["run", f"{mod}:from_loader", "--headless", "--epochs", "2", "--set", "device=\"cpu\"",
                 "--runs-dir", str(tmp_path / "a")]) == 0, capsys.readouterr().err
    log = only_log(tmp_path / "a")
    assert len(of_type(log, "step")) == 8  # the factory's own batching: 64 samples in batches of 16
    assert of_type(log, "step")[0]["knobs"]["lr"] == 0.003 and log.header["config"]["optimizer"]["kind"] == "Adam"
    assert "top1" in of_type(log, "eval")[0]["metrics"]
    assert log.header["run_id"] and log.path.parent.name.startswith(mod)


def test_a_custom_knob_of_a_custom_loss_is_scheduled_and_edited(tmp_path, user_module, capsys):
    mod = user_module(FACTORIES)
    assert main(["run", f"{mod}:with_knob", "--headless", "--epochs", "4", "--set", "device=\"cpu\"", "--set", "data.batch_size=16",
                 "--set", 'schedules.temperature={kind="linear", end=3.0, unit="step"}',
                 "--set", 'edits=[{step=10, knob="temperature", op="set", value=0.5}]',
                 "--runs-dir", str(tmp_path / "a")]) == 0, capsys.readouterr().err
    log = only_log(tmp_path / "a")
    temps = {s["step"]: s["knobs"]["temperature"] for s in of_type(log, "step")}
    assert temps[1] == 1.0 and 1.0 < temps[10] < 3.0 and temps[11] == 0.5
    assert "momentum" in of_type(log, "step")[0]["knobs"]  # RMSprop has one: a knob like SGD's
    assert "label_smoothing" not in temps and of_type(log, "eval")[0]["acc"] >= 0  # classification shapes: accuracy
    bad = main(["run", f"{mod}:with_knob", "--headless", "--set", "device=\"cpu\"", "--set", "edits=[{step=1, knob=\"temperature\", "
                "op=\"set\", value=50.0}]", "--runs-dir", str(tmp_path / "b")])
    assert bad == 0 and "planned edit at step 1 not applied" in of_type(only_log(tmp_path / "b"), "warning")[0]["message"]


@pytest.mark.parametrize("body, target, needle", [
    ("", "nocolon", "expected module:function"),
    ("", "no_such_module_xyz:f", "no module named 'no_such_module_xyz'"),
    ("def f():\n    return 1\n", "{mod}:g", "has no 'g'; callables there: f"),
    ("def f():\n    raise RuntimeError('boom')\n", "{mod}:f", "the factory raised RuntimeError: boom"),
    ("def f():\n    return 42\n", "{mod}:f", "returned int; expected schedtui.Experiment or a dict"),
    ("def f():\n    return {'model': 1, 'train': 2}\n", "{mod}:f", "model must be a torch.nn.Module, got int"),
    ("import torch\ndef f():\n    return {'model': torch.nn.Linear(2, 2), 'train': 'data'}\n", "{mod}:f",
     "train data: expected a map-style Dataset, a DataLoader or an (inputs, targets) pair"),
    ("import torch\ndef f():\n    return {'model': torch.nn.Linear(2, 2), 'train': [(1, 2, 3)]}\n", "{mod}:f",
     "train data: batches must be (input, target) pairs, got tuple of 3"),
    ("import torch\ndef f():\n    return {'model': torch.nn.Linear(2, 2), 'train': (torch.zeros(4, 2), torch.zeros(4).long()),"
     " 'optimizer': torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)}\n", "{mod}:f",
     "the optimizer does not hold the model's parameters"),
    ("import torch, schedtui\ndef f():\n    return {'model': torch.nn.Linear(2, 2), 'train': (torch.zeros(4, 2), torch.zeros(4).long()),"
     " 'knobs': [schedtui.Knob('lr', lambda: 1.0, lambda v: None)]}\n", "{mod}:f", "a built-in knob has that name"),
    ("import torch\ndef f():\n    return {'model': torch.nn.Linear(2, 2), 'train': (torch.zeros(4, 2), torch.zeros(4).long()),"
     " 'optimizer': {'lrr': 1}}\n", "{mod}:f", "optimizer setting 'lrr' is unknown"),
    ("import torch\ndef f():\n    return {'model': torch.nn.Linear(2, 2), 'train': (torch.zeros(4, 2), torch.zeros(4).long()), 'extra': 1}\n",
     "{mod}:f", "unknown piece 'extra'"),
])
def test_a_wrong_factory_is_a_one_line_error_and_nothing_starts(tmp_path, user_module, capsys, body, target, needle):
    mod = user_module(body)
    rc = main(["run", target.format(mod=mod), "--headless", "--set", "device=\"cpu\"", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_loss_that_does_not_return_a_scalar_stops_the_run_with_a_readable_error(tmp_path, user_module, capsys):
    mod = user_module("import torch\ndef f():\n    return {'model': torch.nn.Linear(2, 2), "
                      "'train': (torch.zeros(4, 2), torch.zeros(4).long()), 'loss': lambda o, t: o}\n")
    assert main(["run", f"{mod}:f", "--headless", "--set", "device=\"cpu\"", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "schedtui: the experiment's loss must return a scalar tensor" in capsys.readouterr().err  # one line, exit 2
    log = only_log(tmp_path / "runs")
    assert "must return a scalar tensor, got a tensor of shape (4, 2)" in of_type(log, "error")[0]["message"]
    assert of_type(log, "end")[0]["status"] == "crashed"


def test_the_weighted_loss_example_runs_from_its_preset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["run", "examples.weighted_loss:experiment", "--preset", "examples/weighted_loss.toml", "--epochs", "3",
                 "--headless", "--runs-dir", str(tmp_path / "runs")]) == 0, capsys.readouterr().err
    log = only_log(tmp_path / "runs")
    knobs = [s["knobs"] for s in of_type(log, "step")]
    assert knobs[0]["w_l1"] == 1.0 and knobs[-1]["w_l1"] < 0.5 and knobs[-1]["w_mse"] > 0.5  # scheduled custom knobs
    assert "mae" in of_type(log, "eval")[-1]["metrics"]


def test_a_preset_file_can_name_the_experiment(tmp_path, user_module, capsys):
    mod = user_module(FACTORIES)
    preset = tmp_path / "mine.toml"
    preset.write_text(f'experiment = "{mod}:from_dataset"\nepochs = 2\ndevice = "cpu"\n[data]\nbatch_size = 32\n')
    assert main([str(preset), "--headless", "--runs-dir", str(tmp_path / "runs")]) == 0, capsys.readouterr().err
    assert len(of_type(only_log(tmp_path / "runs"), "step")) == 4
    preset.write_text(f'experiment = "{mod}:from_dataset"\n[data]\nkind = "moons"\n')
    assert main([str(preset), "--headless", "--runs-dir", str(tmp_path / "runs2")]) == 2
    assert "with an experiment the factory gives the data" in capsys.readouterr().err


def _idx(path: Path, magic: int, dims: tuple, data: bytes) -> None:
    with gzip.open(path, "wb") if path.suffix == ".gz" else open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data)


def test_the_fashion_mnist_example_trains_on_a_fashion_mnist_format_folder(tmp_path, monkeypatch, capsys):
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 64), ("t10k", 32)):
        _idx(raw / f"{split}-images-idx3-ubyte", 0x803, (n, 28, 28), torch.randint(0, 256, (n * 784,), generator=g).to(torch.uint8).numpy().tobytes())
        _idx(raw / f"{split}-labels-idx1-ubyte", 0x801, (n,), torch.randint(0, 10, (n,), generator=g).to(torch.uint8).numpy().tobytes())
    monkeypatch.chdir(ROOT)
    assert main(["run", "examples.fashion_mnist:experiment", "--preset", "examples/fashion_mnist.toml", "--epochs", "2",
                 "--set", "data.num_workers=0", "--set", "data.batch_size=16", "--device", "cpu", "--headless",
                 "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs")]) == 0, capsys.readouterr().err
    log = only_log(tmp_path / "runs")
    assert len(of_type(log, "step")) == 8 and {"dropout", "bn_momentum", "label_smoothing"} <= set(of_type(log, "step")[0]["knobs"])
    assert {e["model"] for e in of_type(log, "eval")} == {"raw", "swa"}
