"""Bounded, seeded fuzzing of what starts a run: `--set` values and preset files.

Every case must end in a built run or a one-line UserError, never a traceback, and nothing may be
written outside the runs directory. Cases are drawn by `random.Random(SEED)` from the schema's own keys
(and every torch kind's arguments) and from values at and past every bound: types, ranges, paths, control
characters, Rich markup, deep nesting and broken TOML. Most cases stop after `build_run` (what fails
before a run directory exists); a few that build small runs go all the way through `schedtui.cli.main`.
A failing case prints its arguments, which reproduce it with `schedtui moons --set ...`.
"""

import json
import math
import random

import pytest
import torch
from engine_helpers import TINY_MOONS

from schedtui.cli import main
from schedtui.config import load_config
from schedtui.config.schema import DATA, EARLY_STOPPING, EMA, ENGINE, MODEL, OPTIMIZER, SWA, TOP, F
from schedtui.engine.build import build_run
from schedtui.errors import UserError
from schedtui.schedule.spec import ALL_KINDS
from schedtui.schedule.torch_args import TORCH_ARGS, Choice, Int, Num

SEED = 20261129
N_SETS, N_PRESETS, N_RUNS = 300, 80, 5

FIELDS = {"": TOP, "data.": DATA["moons"], "model.": {**MODEL["mlp"], **MODEL["resnet9"]}, "optimizer.": OPTIMIZER,
          "engine.": ENGINE, "swa.": SWA, "ema.": EMA, "early_stopping.": EARLY_STOPPING}
KEYS = ([p + k for p, fields in FIELDS.items() for k in fields if k != "experiment"]  # never import a module
        + ["data.kind", "model.kind", "optimizer.groups", "edits", "loss.label_smoothing", "loss.terms",
           "loss.terms.task", "loss.terms.l2", "loss.terms.bogus", "schedules.lr", "schedules.lr.kind",
           "schedules.lr.unit", "schedules.lr.start", "schedules.dropout", "schedules.weight_decay",
           "schedules.momentum", "schedules.nope", "schedules.lr.end", "schedules.lr.values",
           "", "a..b", "data.n_samples.x", '"quoted.key"', "x" * 300, "edits.0"]
        + [f"schedules.lr.{a}" for args in TORCH_ARGS.values() for a in args])


def toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    return json.dumps(v)


def near_bounds(rule) -> list:
    """Values at, inside and just past a field's or a torch argument's bounds."""
    if isinstance(rule, F):
        lo, hi, typ = rule.lo, rule.hi, rule.type
        out = [rule.default] if rule.default is not None else []
        if rule.choices:
            return out + list(rule.choices) + ["nope"]
        if typ is list:
            return [[16], [8, 8], [rule.hi + 1 if math.isfinite(rule.hi) else 10**9], [], ["a"]]
        if typ is bool:
            return [True, False, 1]
    elif isinstance(rule, (Num, Int)):
        lo, hi, typ, out = rule.lo, rule.hi, int if isinstance(rule, Int) else float, []
    elif isinstance(rule, Choice):
        return list(rule.values) + ["nope"]
    else:  # Bool
        return [True, False, "yes"]
    for x in (lo, hi):
        if math.isfinite(x):
            out += [typ(x), typ(x) - 1 if typ is int else x - 0.5, typ(x) + 1 if typ is int else x * 2 + 1]
    if typ is int:
        out += [1, 2, 5]
    elif typ is float:
        out += [0.1, 0.5, 1e-3]
    return out


PLAUSIBLE = {p + k: near_bounds(rule) for p, fields in FIELDS.items() for k, rule in fields.items()}
PLAUSIBLE.update({f"schedules.lr.{a}": near_bounds(r) for args in TORCH_ARGS.values() for a, r in args.items()})


def scalars(outside: str) -> list[str]:
    """TOML literals at and past the schema's bounds (and a path outside the runs dir)."""
    return ["0", "1", "2", "3", "-1", "0.5", "1.5", "-0.0", "1e-9", "1e300", "-1e300", "nan", "inf", "-inf",
            str(2**63 - 1), str(2**63), str(2**64), "100000000000", "1e20", "16385", "1025", "10000001", "true",
            '""', '"x"', '"../../OUTSIDE"', json.dumps(outside), json.dumps("a\x1b]0;title\x07\x1b[2J"),
            '"[link=file:///etc/passwd]x[/link]"', '"cpu"', '"cuda"', '"auto"', '"moons"', '"cifar9"', '"mlp"',
            '"resnet9"', '"custom"', '"SGD"', '"AdamW"', '"step"', '"epoch"', '"current"', '"val_acc"', '"cos"']


def value(rng: random.Random, outside: str, depth: int = 0, key: str = "") -> str:
    roll = rng.random()
    if key in PLAUSIBLE and roll < 0.7:
        return toml(rng.choice(PLAUSIBLE[key]))
    if roll < 0.45 or depth > 1:
        return rng.choice(scalars(outside))
    if roll < 0.6:
        return "[" + ", ".join(value(rng, outside, depth + 1) for _ in range(rng.randrange(4))) + "]"
    if roll < 0.8:  # a schedule table: a kind and some of the arguments some kind takes
        kind = rng.choice([*ALL_KINDS, "nope"])
        names = list(TORCH_ARGS.get(kind, {})) or ["value", "end", "duration", "values", "points", "knob", "factor"]
        args = {}
        for _ in range(rng.randrange(4)):
            name = rng.choice([*names, "unit", "start", "bogus"])
            args[name] = value(rng, outside, depth + 1, f"schedules.lr.{name}")
        if rng.random() < 0.5:
            args["unit"] = '"step"'
        return "{" + ", ".join([f'kind = "{kind}"'] + [f"{k} = {v}" for k, v in args.items()]) + "}"
    if roll < 0.9:  # planned edits
        step, knob = rng.choice(["0", "1", "3", "-1", "10000"]), rng.choice(['"lr"', '"dropout"', '"nope"', "1"])
        op, v = rng.choice(['"set"', '"scale"', '"revert"', "3"]), rng.choice(scalars(outside))
        return f"[{{step = {step}, knob = {knob}, op = {op}, value = {v}}}]"
    return rng.choice(["[[[[", "{", '"', "=", "[" * 300, "{a=" * 200, "bare words", "", "1 2", "0x", "\'\'\'", "\\"])


REQUIRED = {"StepLR": "step_size = 2", "MultiStepLR": "milestones = [2]", "ExponentialLR": "gamma = 0.9",
            "OneCycleLR": "max_lr = 0.1", "CyclicLR": "base_lr = 0.001, max_lr = 0.1", "SWALR": "swa_lr = 0.05"}


def set_items(rng: random.Random, outside: str) -> list[str]:
    items = []
    for key in rng.sample(KEYS, rng.randint(1, 3)):
        arg = key.removeprefix("schedules.lr.")
        kinds = [k for k, args in TORCH_ARGS.items() if arg in args]
        if kinds and rng.random() < 0.8:  # mostly a kind that takes the argument, with what it requires
            kind = rng.choice(kinds)
            unit = rng.choice(["", ', unit = "step"'])
            items.append(f'schedules.lr={{kind = "{kind}"{", " + REQUIRED[kind] if kind in REQUIRED else ""}{unit}}}')
        items.append(f"{key}={value(rng, outside, key=key)}")
    return items


def preset_text(rng: random.Random, outside: str) -> str:
    lines = []
    for _ in range(rng.randint(1, 6)):
        if rng.random() < 0.25:
            lines.append(f"[{rng.choice(['data', 'model', 'optimizer', 'schedules.lr', 'engine', 'swa', 'x', 'name'])}]")
        key = rng.choice(KEYS)
        lines.append(f"{key.rsplit('.', 1)[-1] or 'k'} = {value(rng, outside, key=key)}" if rng.random() < 0.9
                     else value(rng, outside))
    return "\n".join(lines) + "\n"


def built(source: str, sets: list[str], data_dir) -> dict | None:
    """The config when the run builds; None for a one-line UserError; anything else fails the test."""
    try:
        cfg, _ = load_config(source, sets)
        build_run(cfg, data_dir)
        return cfg
    except UserError as e:
        assert "\n" not in str(e) and str(e).strip(), f"{source} {sets}: {e!r}"
        return None


def small(cfg: dict) -> bool:
    """Worth a full run here: a tiny CPU run of a few dozen steps."""
    hidden = cfg["model"].get("hidden", [])
    return (cfg["model"]["kind"] == "mlp" and cfg["data"]["kind"] == "moons" and cfg["data"]["n_samples"] <= 2000
            and cfg["data"]["batch_size"] >= 16 and max(hidden, default=0) <= 256 and len(hidden) <= 4)


def files(root) -> set:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_fuzzed_presets_and_set_values_end_in_a_run_or_one_line_and_stay_inside_runs_dir(tmp_path, monkeypatch, capsys):
    rng = random.Random(SEED)
    cwd, data, runs = tmp_path / "cwd", tmp_path / "data", tmp_path / "runs"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    outside = str(tmp_path / "ABS" / "x")
    threads = torch.get_num_threads()
    ok = []
    try:
        for i in range(N_SETS):
            sets = [*TINY_MOONS, *set_items(rng, outside)]
            if built("moons", sets, data) is not None:
                ok.append(sets)
        for i in range(N_PRESETS):
            preset = tmp_path / "presets" / f"fuzz{i}.toml"
            preset.parent.mkdir(exist_ok=True)
            preset.write_text(preset_text(rng, outside))
            built(str(preset), [], data)
    finally:
        torch.set_num_threads(threads)  # a case may set engine.threads
    assert len(ok) > 20  # the fuzzing reaches runs that build, not only errors
    before = files(tmp_path)
    runs_done = 0
    for sets in ok:
        cfg, _ = load_config("moons", sets)
        if not small(cfg) or runs_done == N_RUNS:
            continue
        runs_done += 1
        argv = ["moons", "--headless", "--epochs", "1", "--runs-dir", str(runs), "--data-dir", str(data)]
        argv += [a for s in [*sets, 'device="cpu"', 'engine.on_nonfinite="stop"', "engine.threads=1"] for a in ("--set", s)]
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 0 or (rc == 2 and len(err.strip().splitlines()) == 1), f"{argv}: exit {rc}: {err[-2000:]}"
    assert runs_done == N_RUNS
    assert {p for p in files(tmp_path) - before if p.parts[0] != "runs"} == set()
    assert not (tmp_path / "ABS").exists() and not list(tmp_path.parent.glob("OUTSIDE*"))
    assert all(p.parent == runs for p in runs.iterdir())


@pytest.mark.parametrize("seed", range(3))
def test_the_fuzzing_is_seeded(seed):
    a, b = random.Random(seed), random.Random(seed)
    assert [set_items(a, "/o") for _ in range(20)] == [set_items(b, "/o") for _ in range(20)]
