"""Knobs: named hyperparameters that the run core reads and writes on the live objects.

Every knob starts from the value the live object holds (adopt, never overwrite:
nothing is written unless a schedule or an edit names the knob).

- Optimizer settings, per parameter group, for the settings the optimizer really
  has: `lr`, `weight_decay`, `momentum` (SGD/RMSprop momentum, or beta1 of the
  Adam family), `rho` (Adadelta), `alpha` (RMSprop), `lr_decay` (Adagrad) for the default group (the one named "default", else the first),
  and `lr@GROUP`, `weight_decay@GROUP`, `momentum@GROUP` for every other group
  (named by its `name`, else `group<i>`); by default these follow the default
  group's knob at the ratio the live values had.
- `dropout` (every nn.Dropout) and `dropout@PATTERN` (those whose module name
  matches the fnmatch pattern); `bn_momentum` / `bn_momentum@PATTERN` likewise for
  BatchNorm. A module knob whose modules hold different values shows the largest
  and keeps each module's own value while it follows its adopted values (a
  `scale` multiplies each module's own value); a `set`, a `schedule` edit or a
  preset schedule writes the one value to every module.
- `label_smoothing`, `grad_clip` (max gradient norm, 0 = off) and `loss@TERM`
  (loss-term weights) of the built-in loss.

A new knob is one more `Knob(name, get, set, bounds, doc)`. torch only; must not
import textual/rich.
"""

from __future__ import annotations

from fnmatch import fnmatch

from torch import nn

from schedtui.errors import UserError
from schedtui.knob import Knob
from schedtui.schedule.bounds import NONNEGATIVE, UNIT, UNIT_OPEN

__all__ = ["Holder", "Knob", "ModuleKnob", "build_knobs", "optimizer_knobs"]

# knob base name, the param-group key (and index into it, for a tuple such as betas), bounds, what it is
OPTIMIZER_SETTINGS = (
    ("lr", "lr", None, NONNEGATIVE, "learning rate"),
    ("weight_decay", "weight_decay", None, NONNEGATIVE, "weight decay"),
    ("momentum", "momentum", None, UNIT_OPEN, "momentum"),
    ("momentum", "betas", 0, UNIT_OPEN, "beta1 (momentum)"),
    ("rho", "rho", None, UNIT, "rho (Adadelta's running-average coefficient)"),
    ("alpha", "alpha", None, NONNEGATIVE, "alpha (RMSprop's smoothing constant, ASGD's power)"),
    ("lr_decay", "lr_decay", None, NONNEGATIVE, "lr decay (Adagrad)"),
)


class Holder:
    """A plain value the training loop reads (grad_clip, EMA decay, patience)."""

    def __init__(self, value: float):
        self.value = value


def _getter(g: dict, key: str, index: int | None):
    if index is None:
        return lambda: g[key]
    return lambda: g[key][index]


def _setter(groups: list, key: str, index: int | None):
    def set_(v: float) -> None:
        for g in groups:
            if index is None:
                g[key] = v
            else:  # Adam betas: replace the tuple
                b = list(g[key])
                b[index] = v
                g[key] = tuple(b)

    return set_


def _has(g: dict, key: str, index: int | None) -> bool:
    v = g.get(key)
    if index is None:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, (tuple, list)) and len(v) > index and isinstance(v[index], (int, float))


def optimizer_knobs(groups: list, owner: str = "") -> tuple[dict, dict, dict, dict]:
    """(knobs, initial values, default schedules, (group index, key, index) -> knob name) for every setting the
    optimizer's param groups have. `owner` names the optimizer when there are several: its knobs are then
    `lr@OWNER` and `lr@OWNER.GROUP`."""
    knobs, initial, defaults, knob_of = {}, {}, {}, {}
    named = [g.get("name") for g in groups]
    main = named.index("default") if "default" in named else 0
    for setting, key, index, bounds, what in OPTIMIZER_SETTINGS:
        base = f"{setting}@{owner}" if owner else setting
        if base in knobs or not _has(groups[main], key, index):
            continue
        g0 = groups[main]
        knobs[base] = Knob(base, _getter(g0, key, index), _setter([g0], key, index), bounds,
                           f"{what} of {'optimizer ' + owner if owner else 'the default parameter group'}")
        start = initial[base] = knobs[base].get()
        knob_of[(main, key, index)] = base
        for i, g in enumerate(groups):
            if i == main or not _has(g, key, index):
                continue
            group = g.get("name") or f"group{i}"
            name = f"{base}.{group}" if owner else f"{base}@{group}"
            knobs[name] = Knob(name, _getter(g, key, index), _setter([g], key, index), bounds,
                               f"{what} of parameter group {g.get('name') or i}")
            v = initial[name] = knobs[name].get()
            knob_of[(i, key, index)] = name
            if start > 0:
                defaults[name] = {"kind": "follow", "knob": base, "factor": v / start}
            elif v > 0:
                defaults[name] = {"kind": "constant"}
            else:
                defaults[name] = {"kind": "follow", "knob": base, "factor": 1.0}
    return knobs, initial, defaults, knob_of


class ModuleKnob(Knob):
    """A value held by several modules (dropout p, BatchNorm momentum); see the module docstring."""

    def __init__(self, name: str, modules: list, attr: str, bounds, doc: str):
        self.modules, self.attr = modules, attr
        self.own = [getattr(m, attr) for m in modules]  # each module's adopted value
        self.ref = max(range(len(modules)), key=lambda i: self.own[i])  # the largest: the knob's value
        self.mixed = any(v != self.own[self.ref] for v in self.own)
        self.proportional = self.mixed
        if self.mixed:
            doc = f"{doc}: {', '.join(f'{v:g}' for v in self.own)}"
        super().__init__(name, lambda: getattr(modules[self.ref], attr), self._set, bounds, doc)

    def _set(self, v: float) -> None:
        ref = self.own[self.ref]
        if self.proportional and ref != 0:
            for m, own in zip(self.modules, self.own):
                setattr(m, self.attr, own if v == ref else own * (v / ref))
        else:
            for m in self.modules:
                setattr(m, self.attr, v)

    def follow_adopted(self, follows: bool) -> bool:
        """Whether the knob follows its adopted values (see the module docstring); True when that changed."""
        was = self.proportional
        self.proportional = self.mixed and follows
        return was != self.proportional


def _claim(base: str, model: nn.Module, kinds: tuple, wanted: list[str]) -> dict:
    """name -> modules for `base` and every `base@PATTERN` in `wanted`; specific patterns win."""
    mods = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
    out, taken = {}, set()
    for knob in wanted:
        pat = knob.split("@", 1)[1]
        found = [m for n, m in mods if fnmatch(n, pat) and id(m) not in taken]
        if not found:
            names = ", ".join(n for n, _ in mods) or "none"
            raise UserError(f"knob {knob}: no module matches {pat!r}; {base} modules: {names}")
        taken.update(id(m) for m in found)
        out[knob] = found
    rest = [m for _, m in mods if id(m) not in taken]
    if rest:
        out[base] = rest
    return out


def build_knobs(model: nn.Module, optimizer, loss, clip: Holder, cfg: dict) -> tuple[dict, dict, dict, dict]:
    """(knobs by name, initial values, default schedules, optimizer name ("" for the only one) -> its settings ->
    knob name) for a built run."""
    wanted = [k for k in cfg["schedules"]] + [e["knob"] for e in cfg["edits"]]
    knobs, initial, defaults, knob_of = {}, {}, {}, {}
    several = isinstance(optimizer, dict)
    for owner, opt in (optimizer.items() if several else [("", optimizer)]):
        more = optimizer_knobs(opt.param_groups, owner)
        knobs.update(more[0])
        initial.update(more[1])
        defaults.update(more[2])
        knob_of[owner] = more[3]
    for base, kinds, attr, bounds in (
        ("dropout", (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout), "p", UNIT_OPEN),
        ("bn_momentum", (nn.modules.batchnorm._BatchNorm,), "momentum", UNIT),
    ):
        claimed = _claim(base, model, kinds, sorted({k for k in wanted if k.startswith(base + "@")}))
        for name, mods in claimed.items():
            if base == "bn_momentum" and any(getattr(m, "momentum") is None for m in mods):
                continue  # BatchNorm with momentum=None keeps a cumulative average: no momentum to steer
            knobs[name] = ModuleKnob(name, mods, attr, bounds, f"{attr} of {len(mods)} {base.split('_')[0]} module(s)")
            initial[name] = knobs[name].get()
    if hasattr(loss, "label_smoothing"):  # the built-in loss (a factory's own loss function has none)
        knobs["label_smoothing"] = Knob("label_smoothing", lambda: loss.label_smoothing,
                                        lambda v: setattr(loss, "label_smoothing", v), UNIT_OPEN, "label smoothing of the task loss")
        initial["label_smoothing"] = loss.label_smoothing
    knobs["grad_clip"] = Knob("grad_clip", lambda: clip.value, lambda v: setattr(clip, "value", v), NONNEGATIVE,
                              "max gradient norm (0 = no clipping)")
    initial["grad_clip"] = clip.value
    for term in (loss.weights if hasattr(loss, "weights") else {}):
        name = f"loss@{term}"
        knobs[name] = Knob(name, lambda t=term: loss.weights[t], lambda v, t=term: loss.weights.__setitem__(t, v),
                           NONNEGATIVE, f"weight of loss term {term}")
        initial[name] = loss.weights[term]
    return knobs, initial, defaults, knob_of
