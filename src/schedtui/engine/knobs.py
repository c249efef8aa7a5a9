"""Knobs: named hyperparameters that the engine reads and writes on the live objects.

Built-in knobs: `lr`, `momentum` (SGD momentum / Adam beta1), `weight_decay`,
`lr@GROUP` and `weight_decay@GROUP` per named parameter group (by default they
follow `lr` / `weight_decay` at the preset's ratio), `dropout` (every nn.Dropout)
and `dropout@PATTERN` (those whose module name matches the fnmatch pattern),
`bn_momentum` / `bn_momentum@PATTERN` likewise for BatchNorm, `label_smoothing`,
`grad_clip` (max gradient norm, 0 = off) and `loss@TERM` (loss-term weights).
A new knob is one more `Knob(name, get, set, bounds, doc)`. torch only; must not
import textual/rich.
"""

from __future__ import annotations

from fnmatch import fnmatch

from torch import nn

from schedtui.errors import UserError
from schedtui.knob import Knob
from schedtui.schedule.bounds import NONNEGATIVE, UNIT, UNIT_OPEN

__all__ = ["Holder", "Knob", "build_knobs"]


class Holder:
    """A plain value the training loop reads (grad_clip, a master lr without its own group)."""

    def __init__(self, value: float):
        self.value = value


def _groups_setter(groups: list, key: str, index: int | None = None):
    def set_(v: float) -> None:
        for g in groups:
            if index is None:
                g[key] = v
            else:  # Adam betas: replace the tuple
                b = list(g[key])
                b[index] = v
                g[key] = tuple(b)

    return set_


def _module_knob(name, modules, attr, bounds, doc) -> Knob:
    def set_(v: float) -> None:
        for m in modules:
            setattr(m, attr, v)

    return Knob(name, lambda: getattr(modules[0], attr), set_, bounds, doc)


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


def build_knobs(model: nn.Module, optimizer, loss, clip: Holder, cfg: dict) -> tuple[dict, dict, dict]:
    """(knobs by name, initial values, default schedules) for a built run."""
    opt_cfg, wanted = cfg["optimizer"], list(cfg["schedules"])
    knobs: dict[str, Knob] = {}
    initial: dict[str, float] = {}
    defaults: dict[str, dict] = {}
    groups = optimizer.param_groups
    default_groups = [g for g in groups if g["name"] == "default"]
    for key, bounds in (("lr", NONNEGATIVE), ("weight_decay", NONNEGATIVE)):
        start = default_groups[0][key] if default_groups else opt_cfg[key]  # a factory's optimizer has its own
        master = Holder(start)

        def set_master(v, master=master, gs=default_groups, key=key):
            master.value = v
            for g in gs:
                g[key] = v

        knobs[key] = Knob(key, lambda m=master: m.value, set_master, bounds, f"{key} of the default parameter group")
        initial[key] = start
        for g in groups:
            if g["name"] == "default":
                continue
            name = f"{key}@{g['name']}"
            knobs[name] = Knob(name, lambda g=g, key=key: g[key], _groups_setter([g], key), bounds, f"{key} of group {g['name']}")
            initial[name] = g[key]
            if start > 0:
                defaults[name] = {"kind": "follow", "knob": key, "factor": g[key] / start}
            elif g[key] > 0:
                defaults[name] = {"kind": "constant"}
            else:
                defaults[name] = {"kind": "follow", "knob": key, "factor": 1.0}
    if "betas" in groups[0]:
        knobs["momentum"] = Knob("momentum", lambda: groups[0]["betas"][0], _groups_setter(groups, "betas", 0), UNIT_OPEN, "Adam beta1")
        initial["momentum"] = groups[0]["betas"][0]
    elif "momentum" in groups[0]:
        knobs["momentum"] = Knob("momentum", lambda: groups[0]["momentum"], _groups_setter(groups, "momentum"), UNIT_OPEN, "SGD momentum")
        initial["momentum"] = groups[0]["momentum"]
    for base, kinds, attr, bounds, cfg_key in (
        ("dropout", (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout), "p", UNIT_OPEN, "dropout"),
        ("bn_momentum", (nn.modules.batchnorm._BatchNorm,), "momentum", UNIT, "bn_momentum"),
    ):
        claimed = _claim(base, model, kinds, [k for k in wanted if k.startswith(base + "@")])
        for name, mods in claimed.items():
            knobs[name] = _module_knob(name, mods, attr, bounds, f"{attr} of {len(mods)} {base.split('_')[0]} module(s)")
            initial[name] = cfg["model"].get(cfg_key, getattr(mods[0], attr))
    if hasattr(loss, "label_smoothing"):  # the built-in loss (a factory's own loss function has none)
        knobs["label_smoothing"] = Knob("label_smoothing", lambda: loss.label_smoothing,
                                        lambda v: setattr(loss, "label_smoothing", v), UNIT_OPEN, "label smoothing of the task loss")
        initial["label_smoothing"] = cfg["loss"]["label_smoothing"]
    knobs["grad_clip"] = Knob("grad_clip", lambda: clip.value, lambda v: setattr(clip, "value", v), NONNEGATIVE,
                              "max gradient norm (0 = no clipping)")
    initial["grad_clip"] = opt_cfg["grad_clip"]
    for term, w in (cfg["loss"]["terms"] if hasattr(loss, "weights") else {}).items():
        name = f"loss@{term}"
        knobs[name] = Knob(name, lambda t=term: loss.weights[t], lambda v, t=term: loss.weights.__setitem__(t, v),
                           NONNEGATIVE, f"weight of loss term {term}")
        initial[name] = w
    return knobs, initial, defaults
