"""Presets: loading, --set overrides, validation errors (one line), TOML round trip."""

import math
import tomllib

import pytest

from schedtui.config import list_presets, load_config, parse_set
from schedtui.config.dump import dumps
from schedtui.errors import UserError


def test_shipped_presets_load_and_are_listed_with_descriptions():
    presets = list_presets()
    assert {"moons", "cifar10"} <= set(presets)
    assert all(presets[p] for p in ("moons", "cifar10"))
    cfg, path = load_config("moons")
    assert path.name == "moons.toml" and cfg["name"] == "moons"
    assert cfg["data"]["kind"] == "moons" and cfg["optimizer"]["kind"] == "Adam"
    assert cfg["engine"]["on_nonfinite"] == "pause"  # defaults are filled in: the header holds everything
    assert load_config("cifar10")[0]["schedules"]["lr"]["kind"] == "OneCycleLR"


def test_set_takes_dotted_keys_with_toml_values():
    cfg, _ = load_config(
        "moons",
        [
            "schedules.lr.kind=CosineAnnealingLR",
            "schedules.lr.T_max=200",
            "optimizer.lr=0.05",
            "model.hidden=[8, 8]",
            'schedules."lr@head".kind=follow',
            "schedules.dropout={kind='milestones', values={10=0.4, 50=0.2}}",
        ],
    )
    assert cfg["schedules"]["lr"] == {"kind": "CosineAnnealingLR", "T_max": 200, "eta_min": 1e-4, "unit": "step"}
    assert cfg["optimizer"]["lr"] == 0.05 and cfg["model"]["hidden"] == [8, 8]
    assert cfg["schedules"]["lr@head"] == {"kind": "follow"}
    assert cfg["schedules"]["dropout"]["values"] == {"10": 0.4, "50": 0.2}


def test_parse_set_unquoted_at_sign_and_strings():
    assert parse_set("schedules.lr@head.factor=10") == (["schedules", "lr@head", "factor"], 10)
    assert parse_set("device=cpu") == (["device"], "cpu")


def test_toml_file_preset(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('epochs = 2\n[optimizer]\nlr = 0.1\n')
    cfg, _ = load_config(str(p))
    assert cfg["name"] == "mine" and cfg["epochs"] == 2 and cfg["model"]["kind"] == "mlp"


@pytest.mark.parametrize(
    "preset,sets,needle",
    [
        ("moonz", [], "unknown preset 'moonz'; valid presets: "),
        ("moons", ["optimizer.lrr=0.1"], "optimizer.lrr: unknown key; valid keys in [optimizer]: kind, lr"),
        ("moons", ["optimizer.lr=-0.1"], "optimizer.lr: -0.1 is out of range"),
        ("moons", ["model.dropout=1.5"], "model.dropout: 1.5 is out of range [0, 1)"),
        ("moons", ["optimizer.lr=nan"], "optimizer.lr: nan is not a finite number"),
        ("moons", ['optimizer.kind="Ada-grad"'], "'Ada-grad' is not a torch.optim class name"),
        ("moons", ["model.kind=vgg"], "model.kind: unknown kind 'vgg'; valid: mlp, resnet9"),
        ("moons", ["epochs=0"], "epochs: 0 is out of range"),
        ("moons", ["epochs=two"], "epochs: expected int"),
        ("moons", ["lr"], "expected KEY=VALUE"),
        ("moons", ["optimizer.lr.x=1"], "optimizer.lr is a value, not a table"),
        ("moons", ["loss.terms.bogus=1.0"], "unknown loss term; valid: task, l1"),
        ("moons", ["schedules.lr=3"], "schedules: expected tables"),
        ("moons", ["optimizer.lr=[1,"], "is not a TOML value"),
    ],
)
def test_bad_values_are_one_line_errors(preset, sets, needle):
    with pytest.raises(UserError) as e:
        load_config(preset, sets)
    assert needle in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_malformed_toml_names_file_and_line(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text('epochs = 3\n[optimizer\nlr = 0.1\n')
    with pytest.raises(UserError) as e:
        load_config(str(p))
    assert str(p) in str(e.value) and "line 2" in str(e.value) and "invalid TOML" in str(e.value)


def test_missing_preset_file():
    with pytest.raises(UserError, match="no such preset file: nowhere/x.toml"):
        load_config("nowhere/x.toml")


def test_resolved_config_round_trips_through_toml():
    cfg, _ = load_config("cifar10", ['schedules."dropout@head".kind=constant', "engine.flush_interval=0.5"])
    cfg["extra"] = {"nan": math.inf, "groups": [{"name": "head", "params": ["fc.*"]}]}
    assert tomllib.loads(dumps(cfg)) == cfg
