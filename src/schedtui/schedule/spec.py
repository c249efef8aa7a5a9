"""Schedule specs (TOML/JSON tables) -> schedule objects, with one-line errors.

A spec is `{"kind": ..., "unit": "step"|"epoch", ...arguments}`. `kind` is a
`torch.optim.lr_scheduler` class name with torch's own argument names, or a
native kind. `start` (alias `base`) is the value the schedule starts from; it
defaults to the knob's value at the schedule's origin, and `"current"` says so
explicitly. Lengths left out default to the rest of the run: `duration` of
linear/cosine, `T_max` of CosineAnnealingLR, `total_steps` of OneCycleLR.
Pure Python; torch only through `torch_kinds` (lazily). No textual/rich.
"""

from __future__ import annotations

import math

from schedtui.errors import UserError
from schedtui.schedule import native
from schedtui.schedule.timing import UNITS, Timing
from schedtui.schedule.torch_args import check_torch_args
from schedtui.schedule.torch_kinds import PLATEAU_METRICS, TORCH_KINDS, PlateauSchedule, TorchSchedule, torch_arg_names

__all__ = ["ALL_KINDS", "NATIVE_KINDS", "TORCH_KINDS", "Timing", "build_schedule", "describe_spec"]

NATIVE_KINDS = ("constant", "linear", "cosine", "milestones", "piecewise", "follow")
ALL_KINDS = NATIVE_KINDS + TORCH_KINDS
_COMMON = ("kind", "unit", "start", "base")
_NATIVE_ARGS = {
    "constant": ("value",),
    "linear": ("end", "duration"),
    "cosine": ("end", "duration"),
    "milestones": ("values",),
    "piecewise": ("points",),
    "follow": ("knob", "factor"),
}


def _fail(knob: str, msg: str):
    raise UserError(f"schedule for {knob}: {msg}")


def _number(knob: str, name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        _fail(knob, f"{name} must be a finite number, got {v!r}")
    return float(v)


def _time_points(knob: str, name: str, items) -> tuple[list, list]:
    pts = []
    for t, v in items:
        try:
            t = float(t)
        except (TypeError, ValueError):
            _fail(knob, f"{name}: {t!r} is not a step/epoch number")
        if not math.isfinite(t) or t < 0:
            _fail(knob, f"{name}: time {t!r} must be >= 0")
        pts.append((t, _number(knob, f"{name} at {t:g}", v)))
    if not pts:
        _fail(knob, f"{name} must not be empty")
    pts.sort()
    if len({t for t, _ in pts}) != len(pts):
        _fail(knob, f"{name} has the same time twice")
    return [t for t, _ in pts], [v for _, v in pts]


def spec_start(spec: dict, knob: str, default: float) -> float:
    """The value a spec starts from: its `start`/`base`, else `default` (the knob's value at the origin)."""
    if "start" in spec and "base" in spec:
        _fail(knob, "give start or base, not both")
    raw = spec.get("start", spec.get("base", "current"))
    return default if raw == "current" else _number(knob, "start", raw)


def build_schedule(spec: dict, *, knob: str, start: float, timing: Timing, origin: int = 0):
    """A schedule object for `spec`; `start` is the knob's value at `origin` (the default starting value)."""
    if not isinstance(spec, dict):
        _fail(knob, f"expected a table with a kind, got {spec!r}")
    kind = spec.get("kind")
    if kind not in ALL_KINDS:
        _fail(knob, f"unknown kind {kind!r}; valid kinds: {', '.join(ALL_KINDS)}")
    unit = spec.get("unit", "epoch")
    if unit not in UNITS:
        _fail(knob, f"unit must be 'step' or 'epoch', got {unit!r}")
    s0 = spec_start(spec, knob, start)
    args = {k: v for k, v in spec.items() if k not in _COMMON}
    if kind in NATIVE_KINDS:
        return _native(kind, args, knob=knob, start=s0, unit=unit, timing=timing, origin=origin)
    return _torch(kind, args, knob=knob, start=s0, unit=unit, timing=timing, origin=origin)


def _check_args(knob: str, kind: str, args: dict, valid) -> None:
    for name in args:
        if name not in valid:
            _fail(knob, f"{kind} has no argument {name!r}; valid: {', '.join(list(valid) + ['unit', 'start'])}")


def _native(kind, args, *, knob, start, unit, timing, origin):
    _check_args(knob, kind, args, _NATIVE_ARGS[kind])
    base = dict(unit=unit, timing=timing)
    if kind == "constant":
        return native.Constant(**base, value_=_number(knob, "value", args.get("value", start)))
    if kind in ("linear", "cosine"):
        if kind == "linear" and "end" not in args:
            _fail(knob, "linear needs end")
        duration = _number(knob, "duration", args.get("duration", timing.remaining(origin, unit)))
        if duration <= 0:
            _fail(knob, "duration must be > 0")
        end = _number(knob, "end", args.get("end", 0.0))
        return native.Ramp(**base, start=start, end=end, duration=duration, shape=kind)
    if kind == "milestones":
        values = args.get("values")
        if not isinstance(values, dict):
            _fail(knob, "milestones needs values = { TIME = VALUE, ... }")
        times, vals = _time_points(knob, "values", values.items())
        return native.Milestones(**base, start=start, times=times, values=vals)
    if kind == "piecewise":
        points = args.get("points")
        if not isinstance(points, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in points):
            _fail(knob, "piecewise needs points = [[TIME, VALUE], ...]")
        times, vals = _time_points(knob, "points", points)
        if times[0] > 0:
            times, vals = [0.0] + times, [start] + vals
        return native.Piecewise(**base, times=times, values=vals)
    other = args.get("knob")
    if not isinstance(other, str) or not other:
        _fail(knob, "follow needs knob = NAME (the knob to follow)")
    if other == knob:
        _fail(knob, "a knob cannot follow itself")
    factor = args.get("factor")
    return native.Follow(**base, knob=other, factor=None if factor is None else _number(knob, "factor", factor))


def _torch(kind, args, *, knob, start, unit, timing, origin):
    valid = torch_arg_names(kind) + (["metric"] if kind == "ReduceLROnPlateau" else [])
    _check_args(knob, kind, args, valid)
    args = dict(args)
    left = max(1, math.ceil(timing.remaining(origin, unit)))
    if kind == "OneCycleLR" and not {"total_steps", "epochs", "steps_per_epoch"} & set(args):
        args["total_steps"] = left
    if kind == "CosineAnnealingLR" and "T_max" not in args:
        args["T_max"] = left
    metric = args.pop("metric", "val_loss") if kind == "ReduceLROnPlateau" else None
    args = check_torch_args(kind, args, knob)
    try:
        if kind == "ReduceLROnPlateau":
            if metric not in PLATEAU_METRICS:
                _fail(knob, f"metric must be one of {', '.join(PLATEAU_METRICS)}, got {metric!r}")
            if "mode" not in args and metric.endswith("acc"):
                args["mode"] = "max"
            return PlateauSchedule(args, start, metric)
        sched = TorchSchedule(kind, args, start, unit, timing)
        sched.value(1)  # its first steps, now: what torch fails at only once stepped fails here, not mid-run
        return sched
    except UserError:
        raise
    except Exception as e:  # torch's own checks (TypeError, ValueError...) and what its arithmetic raises
        if isinstance(e, (TypeError, ValueError)):
            _fail(knob, f"{kind}: {e}")
        _fail(knob, f"torch's {kind} fails with these arguments ({type(e).__name__}: {e})")


def describe_spec(spec: dict) -> str:
    """A short label for a table: `OneCycleLR max_lr=0.2 (step)`."""
    kind = spec.get("kind", "?")
    args = " ".join(f"{k}={_short(v)}" for k, v in spec.items() if k not in ("kind", "unit"))
    unit = "" if kind in ("constant", "follow", "ReduceLROnPlateau") else f" ({spec.get('unit', 'epoch')})"
    return f"{kind} {args}".rstrip() + unit


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_short(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_short(x) for x in v) + "]"
    return str(v)
