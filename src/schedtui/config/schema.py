"""The preset schema: every key, its type, default and allowed range, as data.

`validate(cfg)` returns a new dict with defaults filled in, or raises a one-line
UserError naming the key and what is valid. `[data]` and `[model]` have keys that
depend on their `kind`. `[schedules]` is checked by the schedule package once the
knobs are known (they depend on the model). Pure Python.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass

from schedtui.errors import UserError
from schedtui.safe_text import visible
from schedtui.schedule.bounds import MAX_SCALE
from schedtui.schedule.timing import MAX_STEPS

INF = math.inf


@dataclass(frozen=True)
class F:
    """One config field: python type, default (None = required), numeric range, allowed strings."""

    type: type
    default: object = None
    lo: float = -INF
    hi: float = INF
    hi_open: bool = False
    lo_open: bool = False
    choices: tuple = ()
    item: type | None = None  # element type of a list
    optional: bool = False
    max_len: int = 1000  # of a list

    def check(self, key: str, v):
        if self.type is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if self.type is list:
            if not isinstance(v, list) or not all(_is(x, self.item) for x in v):
                raise UserError(f"{key}: expected a list of {self.item.__name__}, got {shown(v)}")
            if len(v) > self.max_len:
                raise UserError(f"{key}: at most {self.max_len} items, got {len(v)}")
            if self.item in (int, float):
                for x in v:
                    self._range(key, x)
            return [float(x) if self.item is float else x for x in v]
        if not _is(v, self.type):
            raise UserError(f"{key}: expected {self.type.__name__}, got {shown(v)}")
        if self.choices and v not in self.choices:
            raise UserError(f"{key}: {shown(v)} is not one of {', '.join(map(str, self.choices))}")
        if self.type in (int, float):
            self._range(key, v)
        return v

    def _range(self, key, v):
        if isinstance(v, float) and not math.isfinite(v):
            raise UserError(f"{key}: {v} is not a finite number")
        if v < self.lo or (self.lo_open and v == self.lo) or v > self.hi or (self.hi_open and v == self.hi):
            left = "(" if self.lo_open else "["
            right = ")" if self.hi_open else "]"
            raise UserError(f"{key}: {shown(v)} is out of range {left}{_num(self.lo)}, {_num(self.hi)}{right}")


_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 60, 60, 8, 8


def shown(v) -> str:
    """A value from a preset or a log, for an error message: short (nesting and length cut), control
    characters visible."""
    return visible(_REPR.repr(v))


def _num(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 1e19 else f"{x:g}"


def _is(v, t) -> bool:
    if t is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t is int:
        return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, t)


PROB = dict(lo=0.0, hi=1.0, hi_open=True)
# Upper bounds: past them a value is a typo, an overflow (a seed is a signed 64-bit integer in TOML), a process
# that cannot be built (torch with 100000 threads crashes) or memory no machine has. build_run also turns an
# allocation that fails anyway into a one-line error.
MAX_SEED = 2**63 - 1
MAX_EPOCHS = 1_000_000
MAX_SAMPLES = 10_000_000
MAX_BATCH = 1 << 20
MAX_WIDTH = 16384  # an mlp layer
MAX_MLP_WEIGHTS = 100_000_000  # between its hidden layers: 400 MB in float32 (and as much again per optimizer state)
MAX_THREADS = 1024
MAX_COUNT = 1_000_000  # epochs between checkpoints or evaluations, patience, anneal epochs...
SCALE = dict(lo=0.0, hi=MAX_SCALE)  # lr, weight decay, loss weights, clip: what float32 arithmetic multiplies

# A run's name is the start of its directory's name (RUNS_DIR/<name>-<timestamp>), so it can never be a path.
NAME_RULE = "1 to 64 letters, digits, _ . or -, not starting with . or - and without .."
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def name_problem(name) -> str | None:
    """Why `name` cannot name a run directory, or None."""
    if not isinstance(name, str):
        return f"expected str, got {shown(name)}"
    if not _NAME.fullmatch(name) or ".." in name:
        return f"{shown(name)} cannot name a run directory: use {NAME_RULE}"
    return None


def check_name(name, key: str = "name") -> str:
    """`name` when it is a safe run name (a preset's or --set's: the user typed it), else a one-line UserError."""
    why = name_problem(name)
    if why:
        raise UserError(f"{key}: {why}")
    return name


def safe_name(name) -> str:
    """A safe run name made from one nobody typed as a name (a file's stem, a module, a log's header): itself
    when it is safe; else every run of other characters (and every ..) becomes one _, without ., _ or - at
    either end, at most 64 characters: `../../OUTSIDE` -> `OUTSIDE`, `.my preset+1` -> `my_preset_1`."""
    if isinstance(name, str) and name_problem(name) is None:
        return name
    text = re.sub(r"\.{2,}", "_", name if isinstance(name, str) else "")
    text = re.sub(r"_{2,}", "_", re.sub(r"[^A-Za-z0-9._-]+", "_", text))
    text = text.strip("._-")[:64].rstrip("._-")
    return text or "run"

TOP = {
    "name": F(str, ""),
    "description": F(str, ""),
    "experiment": F(str, optional=True),  # module:function returning the model, data, loss... (schedtui run)
    "seed": F(int, 0, lo=0, hi=MAX_SEED),
    "epochs": F(int, 10, lo=1, hi=MAX_EPOCHS),
    "device": F(str, "auto", choices=("auto", "cpu", "cuda", "mps")),
}
DATA = {
    "moons": {
        "n_samples": F(int, 1000, lo=4, hi=MAX_SAMPLES),
        "noise": F(float, 0.2, lo=0.0, hi=100.0),
        "val_fraction": F(float, 0.2, lo=0.0, hi=1.0, lo_open=True, hi_open=True),
        "batch_size": F(int, 32, lo=1, hi=MAX_BATCH),
        "eval_batch_size": F(int, 0, lo=0, hi=MAX_BATCH),
    },
    "cifar10": {
        "batch_size": F(int, 512, lo=1, hi=MAX_BATCH),
        "eval_batch_size": F(int, 0, lo=0, hi=MAX_BATCH),
        "crop_padding": F(int, 4, lo=0, hi=16),
        "flip": F(bool, True),
        "download": F(bool, True),
        "verify": F(bool, True),
        "train_subset": F(int, 0, lo=0, hi=MAX_SAMPLES),
        "val_subset": F(int, 0, lo=0, hi=MAX_SAMPLES),
    },
    "custom": {  # an experiment factory's data (datasets or tensors; a DataLoader of its own keeps its batching)
        "batch_size": F(int, 64, lo=1, hi=MAX_BATCH),
        "eval_batch_size": F(int, 0, lo=0, hi=MAX_BATCH),
        "shuffle": F(bool, True),
        "drop_last": F(bool, False),
        "num_workers": F(int, 0, lo=0, hi=256),
    },
}
MODEL = {
    "mlp": {
        "hidden": F(list, [64, 64], item=int, lo=1, hi=MAX_WIDTH, max_len=64),
        "dropout": F(float, 0.1, **PROB),
        "activation": F(str, "relu", choices=("relu", "gelu", "tanh")),
        "batchnorm": F(bool, False),  # BatchNorm1d after each hidden Linear (then bn_momentum is a knob)
    },
    "resnet9": {
        "width": F(int, 64, lo=4, hi=256),  # 4x the default: about 100M parameters
        "dropout": F(float, 0.0, **PROB),
        "bn_momentum": F(float, 0.1, lo=0.0, hi=1.0),
        "channels_last": F(bool, True),
    },
}
BUILT_IN_OPTIMIZERS = ("SGD", "Adam", "AdamW")  # with the settings below; any other torch.optim class takes torch's
# own argument names in [optimizer] (checked against the class when the run is built)
OPTIMIZER = {
    "kind": F(str, "SGD", choices=BUILT_IN_OPTIMIZERS),
    "lr": F(float, 0.01, **SCALE),
    "momentum": F(float, 0.9, lo=0.0, hi=1.0, hi_open=True),
    "weight_decay": F(float, 0.0, **SCALE),
    "nesterov": F(bool, False),
    "beta2": F(float, 0.999, **PROB),
    "eps": F(float, 1e-8, lo=0.0, hi=1.0, lo_open=True),
    "grad_clip": F(float, 0.0, **SCALE),
}
GROUP = {
    "name": F(str),
    "params": F(list, item=str),
    "lr": F(float, **SCALE, optional=True),
    "weight_decay": F(float, **SCALE, optional=True),
}
LOSS = {
    "label_smoothing": F(float, 0.0, **PROB),
}
LOSS_TERMS = ("task", "l1", "l2", "confidence", "logit_norm")
ENGINE = {
    "amp": F(str, "auto", choices=("auto", "off", "bf16", "fp16")),
    "on_nonfinite": F(str, "pause", choices=("pause", "stop", "warn")),
    "flush_interval": F(float, 1.0, lo=0.01, hi=60.0),
    "read_every": F(int, 0, lo=0, hi=MAX_COUNT),
    "eval_every": F(int, 1, lo=1, hi=MAX_COUNT),
    "threads": F(int, 0, lo=0, hi=MAX_THREADS),  # torch's intra-op threads; 0 = torch's default
    "checkpoint_every": F(int, 0, lo=0, hi=MAX_COUNT),  # epochs between automatic checkpoints; 0 = only on demand and at stop
    # where a non-finite loss is caught before it reaches the weights: "step" (each update, read on the host: the
    # CPU), "device" (a found-inf flag that makes a fused optimizer's step a no-op: no sync), "read" (at the
    # batched reads: it is noticed there); "auto": step on the CPU, device with a fused optimizer, else read
    "nonfinite_check": F(str, "auto", choices=("auto", "step", "device", "read")),
    "rank_timeout": F(float, 30.0, lo=1.0, hi=86400.0),  # torchrun: a rank silent this long ends the run crashed
    "ddp_cadence": F(int, 16, lo=1, hi=MAX_COUNT),  # torchrun: commands reach every rank every this many updates
}

SWA = {  # [swa]: stochastic weight averaging; without `start`, only on demand (the w key)
    "start": F(float, lo=0.0, optional=True),  # an epoch (>= 1, fractions allowed) or a fraction of the run (< 1)
    "swa_lr": F(float, lo=0.0, hi=MAX_SCALE, lo_open=True, optional=True),  # default: the lr when SWA starts, held
    "anneal_epochs": F(int, 10, lo=0, hi=MAX_COUNT),  # torch.optim.swa_utils.SWALR's defaults
    "anneal_strategy": F(str, "cos", choices=("cos", "linear")),
    "update_every": F(int, 1, lo=1, hi=MAX_STEPS),
    "update_unit": F(str, "epoch", choices=("epoch", "step")),
}
EMA = {  # [ema]: an exponential moving average of the weights, updated after every optimizer step
    "decay": F(float, 0.999, lo=0.0, hi=1.0, hi_open=True),  # a knob: schedule or edit it as ema_decay
}
EARLY_STOPPING = {  # [early_stopping]: stop when `metric` has not improved by min_delta for `patience` evaluations
    "patience": F(int, 5, lo=0, hi=MAX_COUNT),  # a knob: edit it while the run goes
    "min_delta": F(float, 0.0, lo=0.0, hi=MAX_SCALE),
    "metric": F(str, "val_loss", choices=("val_loss", "val_acc", "train_loss")),
    "restore_best": F(bool, True),
}
OPTIONAL_SECTIONS = {"swa": SWA, "ema": EMA, "early_stopping": EARLY_STOPPING}

SECTIONS = ("data", "model", "optimizer", "loss", "schedules", "engine", "edits", *OPTIONAL_SECTIONS)


def section_defaults(name: str) -> dict:
    """An optional section's values when a preset does not give it (e.g. SWA started on demand)."""
    return _fields(name, {}, OPTIONAL_SECTIONS[name])


def _fields(prefix: str, table, fields: dict, skip=()) -> dict:
    if not isinstance(table, dict):
        raise UserError(f"{prefix}: expected a table, got {shown(table)}")
    for key in table:
        if key not in fields and key not in skip:
            valid = ", ".join(list(fields) + list(skip))
            raise UserError(f"{prefix}.{visible(key)}: unknown key; valid keys in [{prefix}]: {valid}".replace("[.", "["))
    out = {}
    for key, f in fields.items():
        full = f"{prefix}.{key}".lstrip(".")
        if key in table:
            out[key] = f.check(full, table[key])
        elif f.default is not None:
            out[key] = list(f.default) if isinstance(f.default, list) else f.default
        elif not f.optional:
            raise UserError(f"{full}: missing (required)")
    return out


def _kinded(section: str, table, kinds: dict, default: str) -> dict:
    if not isinstance(table, dict):
        raise UserError(f"{section}: expected a table, got {shown(table)}")
    kind = table.get("kind", default)
    if not isinstance(kind, str) or kind not in kinds:
        raise UserError(f"{section}.kind: unknown kind {shown(kind)}; valid: {', '.join(kinds)}")
    return {"kind": kind, **_fields(section, table, kinds[kind], skip=("kind",))}


def _torch_optimizer(opt: dict) -> dict:
    """[optimizer] for a torch.optim class other than the built-in three: torch's own argument names, plain values
    (their names and types are checked against the class when the run is built); lr, weight_decay and grad_clip as
    everywhere."""
    kind = opt["kind"]
    if not kind.isidentifier() or kind.startswith("_"):
        raise UserError(f"optimizer.kind: {kind!r} is not a torch.optim class name")
    out: dict = {"kind": kind}
    for key, v in opt.items():
        if key in ("kind", "groups"):
            continue
        if key in ("lr", "weight_decay", "grad_clip"):
            out[key] = OPTIMIZER[key].check(f"optimizer.{key}", v)
        elif isinstance(v, (bool, int, float, str)) or (isinstance(v, list) and all(isinstance(x, (int, float)) for x in v)):
            if isinstance(v, float) and not math.isfinite(v):
                raise UserError(f"optimizer.{key}: {v} is not a finite number")
            out[key] = v
        else:
            raise UserError(f"optimizer.{key}: expected a number, a boolean, a string or a list of numbers, got {v!r}")
    out.setdefault("grad_clip", 0.0)
    return out


def validate(cfg: dict) -> dict:
    """A new, fully resolved config (defaults filled in); one-line UserError on the first problem."""
    out = _fields("", cfg, TOP, skip=SECTIONS)
    custom = "experiment" in out
    out["data"] = _kinded("data", cfg.get("data", {}), DATA, "custom" if custom else "moons")
    if custom and out["data"]["kind"] != "custom":
        raise UserError(f"data.kind: with an experiment the factory gives the data; [data] takes only "
                        f"{', '.join(DATA['custom'])} (got kind {shown(out['data']['kind'])})")
    if not custom and out["data"]["kind"] == "custom":
        raise UserError("data.kind: 'custom' is for an experiment factory: set experiment = \"module:function\"")
    if custom:
        if cfg.get("model", {}) not in ({}, {"kind": "custom"}):
            raise UserError("model: with an experiment the factory gives the model; leave [model] out")
        out["model"] = {"kind": "custom"}
    else:
        out["model"] = _kinded("model", cfg.get("model", {}), MODEL, "mlp")
        hidden = out["model"].get("hidden", [])
        weights = sum(a * b for a, b in zip(hidden, hidden[1:]))
        if weights > MAX_MLP_WEIGHTS:  # memory a machine does not have is not always an error: it can be a kill
            raise UserError(f"model.hidden: {weights:,} weights between the hidden layers; at most {MAX_MLP_WEIGHTS:,}")
    opt = cfg.get("optimizer", {})
    if isinstance(opt, dict) and opt.get("kind") == "given":  # a factory's own optimizer(s): the header describes them
        if not custom:
            raise UserError("optimizer.kind: 'given' is for an experiment whose factory builds its own optimizer")
        out["optimizer"] = {"kind": "given", "grad_clip": OPTIMIZER["grad_clip"].check("optimizer.grad_clip",
                                                                                       opt.get("grad_clip", 0.0)),
                            "groups": []}
        opt = {}
    elif isinstance(opt, dict) and isinstance(opt.get("kind"), str) and opt["kind"] not in BUILT_IN_OPTIMIZERS:
        out["optimizer"] = _torch_optimizer(opt)
    else:
        out["optimizer"] = _fields("optimizer", opt, OPTIMIZER, skip=("groups",))
    groups = opt.get("groups", []) if isinstance(opt, dict) else []
    if not isinstance(groups, list):
        raise UserError("optimizer.groups: expected a list of tables ([[optimizer.groups]])")
    out["optimizer"]["groups"] = [_fields(f"optimizer.groups[{i}]", g, GROUP) for i, g in enumerate(groups)]
    names = [g["name"] for g in out["optimizer"]["groups"]]
    if len(set(names)) != len(names) or "default" in names:
        raise UserError("optimizer.groups: group names must be unique and not 'default'")
    loss = cfg.get("loss", {})
    out["loss"] = _fields("loss", loss, LOSS, skip=("terms",))
    terms = loss.get("terms", {"task": 1.0}) if isinstance(loss, dict) else {}
    if not isinstance(terms, dict) or not terms:
        raise UserError("loss.terms: expected a table of term = weight, e.g. { task = 1.0, l2 = 1e-4 }")
    for t, w in terms.items():
        if t not in LOSS_TERMS:
            raise UserError(f"loss.terms.{visible(t)}: unknown loss term; valid: {', '.join(LOSS_TERMS)}")
        F(float, **SCALE).check(f"loss.terms.{t}", w)
    out["loss"]["terms"] = {t: float(w) for t, w in terms.items()}
    scheds = cfg.get("schedules", {})
    if not isinstance(scheds, dict) or not all(isinstance(s, dict) for s in scheds.values()):
        raise UserError("schedules: expected tables, e.g. [schedules.lr] kind = \"OneCycleLR\"")
    out["schedules"] = {k: dict(v) for k, v in scheds.items()}
    out["engine"] = _fields("engine", cfg.get("engine", {}), ENGINE)
    for name, fields in OPTIONAL_SECTIONS.items():  # present only when the preset has the section
        if name in cfg:
            out[name] = _fields(name, cfg[name], fields)
    from schedtui.config.edits import validate_edits  # it builds on F, defined here

    out["edits"] = validate_edits(cfg.get("edits", []))
    return out
