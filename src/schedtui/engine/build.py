"""Turn a resolved config into the live objects of a run, before anything is started.

Everything that can be wrong with a preset (a knob name, a schedule, a device,
missing data, memory that cannot be allocated) fails here with a one-line
UserError, before a run directory or log exists. torch only; must not import textual/rich.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from schedtui.engine.averaging import Averaging, swa_start_step
from schedtui.engine.data import DataBundle, build_data
from schedtui.engine.early_stop import EarlyStopping
from schedtui.engine.knobs import Holder, Knob, build_knobs
from schedtui.engine.losses import WeightedLoss
from schedtui.engine.models import build_model
from schedtui.engine.optim import build_optimizer
from schedtui.engine.user_parts import experiment_pieces
from schedtui.errors import UserError
from schedtui.schedule import KnobSchedules, Timing


@dataclass
class RunParts:
    cfg: dict
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    data: DataBundle
    loss: WeightedLoss
    clip: Holder
    knobs: dict[str, Knob]
    schedules: KnobSchedules
    timing: Timing
    amp_dtype: torch.dtype | None
    averaging: Averaging | None = None  # SWA (on demand or from [swa]) and EMA ([ema])
    early_stop: EarlyStopping | None = None  # [early_stopping]
    metrics: dict = field(default_factory=dict)  # a factory's validation metrics: name -> fn(output, target)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here (try --device cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps: MPS is not available here (try --device cpu)")
    return torch.device(name)


def _amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or setting == "off":
        return None
    if setting == "fp16":
        return torch.float16
    return torch.bfloat16 if setting == "bf16" or torch.cuda.is_bf16_supported() else None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _check_planned_edits(edits: list, knobs: dict, timing: Timing) -> None:
    for i, e in enumerate(edits):
        if e["knob"] not in knobs:
            raise UserError(f"edits[{i}].knob: no knob named {e['knob']!r}; knobs: {', '.join(knobs)}")
        if e["step"] > timing.total_steps:
            raise UserError(f"edits[{i}].step: {e['step']} is past the run's last update ({timing.total_steps})")


def _knob_value(k) -> float:
    try:
        v = k.get()
    except Exception as e:
        raise UserError(f"knob {k.name}: get() raised {type(e).__name__}: {e}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise UserError(f"knob {k.name}: get() must return a number, got {type(v).__name__}")
    return float(v)


def build_run(cfg: dict, data_dir: str | Path) -> RunParts:
    """The run's parts; a one-line UserError for anything wrong, memory that cannot be had included."""
    try:
        return _build_run(cfg, data_dir)
    except MemoryError:
        raise UserError(_NO_MEMORY.format(why="MemoryError")) from None
    except RuntimeError as e:  # torch.OutOfMemoryError is one; the CPU allocator raises a plain RuntimeError
        text = str(e)
        if isinstance(e, getattr(torch, "OutOfMemoryError", ())) or "can't allocate memory" in text \
                or "out of memory" in text.lower():
            why = " ".join(text.split())
            raise UserError(_NO_MEMORY.format(why=why[:160] + ("..." if len(why) > 160 else ""))) from None
        raise


_NO_MEMORY = ("not enough memory to build the run ({why}); make it smaller: data.n_samples, model.hidden or "
              "model.width, data.batch_size")


def _build_run(cfg: dict, data_dir: str | Path) -> RunParts:
    device = resolve_device(cfg["device"])
    if cfg["engine"]["threads"]:
        torch.set_num_threads(cfg["engine"]["threads"])
    seed_everything(cfg["seed"])
    extra_knobs, metrics = [], {}
    if cfg.get("experiment"):  # a factory gives the pieces (schedtui run module:function)
        data, model, optimizer, loss, extra_knobs, metrics = experiment_pieces(cfg, device, data_dir)
    else:
        data = build_data(cfg["data"], device, cfg["seed"], data_dir)
        model = build_model(cfg["model"], data.input_shape, data.n_classes).to(device)
        if device.type == "cuda" and cfg["model"].get("channels_last"):
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(model, cfg["optimizer"])
        loss = WeightedLoss(model, data.task, cfg["loss"]["terms"], cfg["loss"]["label_smoothing"])
    return assemble(cfg, device, data, model, optimizer, loss, extra_knobs, metrics, len(data.train))


def assemble(cfg: dict, device, data, model, optimizer, loss, extra_knobs: list, metrics: dict, steps_per_epoch: int,
             skip_knobs: tuple = ()) -> RunParts:
    """Knobs, schedules, SWA/EMA and early stopping around built pieces (a preset's, a factory's, an own loop's)."""
    clip = Holder(cfg["optimizer"]["grad_clip"])
    knobs, initial, defaults = build_knobs(model, optimizer, loss, clip, cfg)
    for name in skip_knobs:  # what the caller's loop does not apply (an own loop clips its own gradients)
        knobs.pop(name, None)
        initial.pop(name, None)
    for k in extra_knobs:
        if k.name in knobs:
            raise UserError(f"experiment knob {k.name!r}: a built-in knob has that name; built-in: {', '.join(knobs)}")
        knobs[k.name] = k
        initial[k.name] = _knob_value(k)
    timing = Timing(steps_per_epoch, steps_per_epoch * cfg["epochs"])
    specs = {**defaults, **cfg["schedules"]}
    averaging = Averaging(model, cfg, timing)
    early_stop = EarlyStopping(cfg["early_stopping"], model) if "early_stopping" in cfg else None
    for part in (averaging, early_stop):  # ema_decay, patience: knobs like any other
        if part is not None:
            more, start = part.knobs()
            knobs.update(more)
            initial.update(start)
    if "swa" in cfg:
        swa_start_step(cfg["swa"], timing)  # a start past the run's end fails here, before anything starts
    schedules = KnobSchedules(initial, specs, {k: kn.bounds for k, kn in knobs.items()}, timing)
    _check_planned_edits(cfg["edits"], knobs, timing)
    return RunParts(cfg, device, model, optimizer, data, loss, clip, knobs, schedules, timing,
                    _amp_dtype(cfg["engine"]["amp"], device), averaging, early_stop, metrics)
