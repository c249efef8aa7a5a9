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
    optimizer: object  # a torch.optim.Optimizer, or name -> Optimizer (several: `optimizers`)
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
    adopted: set = field(default_factory=set)  # knobs no schedule names: they start from (and keep) the live value
    scheduler: object = None  # the user's own torch scheduler, adopted (engine.adopted.AdoptedScheduler)
    train_step: object = None  # a factory's train_step(model, batch, ctx) (engine.custom_step)
    eval_step: object = None
    manual: bool = False  # train_step does its own backward and steps
    ctx: object = None  # the custom step's StepContext
    ddp_model: object = None  # the model wrapped in DistributedDataParallel (a data-parallel job), for training

    @property
    def optimizers(self) -> dict:
        """Every optimizer by name ({"default": the optimizer} when there is one)."""
        return self.optimizer if isinstance(self.optimizer, dict) else {"default": self.optimizer}


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
    """The run's parts; a one-line UserError for anything wrong, memory that cannot be had included. In a
    data-parallel job (engine.ddp): on this rank's device, the data sharded, the model wrapped in
    DistributedDataParallel for training."""
    try:
        parts = _build_run(cfg, data_dir)
    except MemoryError:
        raise UserError(_NO_MEMORY.format(why="MemoryError")) from None
    except RuntimeError as e:  # torch.OutOfMemoryError is one; the CPU allocator raises a plain RuntimeError
        text = str(e)
        if isinstance(e, getattr(torch, "OutOfMemoryError", ())) or "can't allocate memory" in text \
                or "out of memory" in text.lower():
            why = " ".join(text.split())
            raise UserError(_NO_MEMORY.format(why=why[:160] + ("..." if len(why) > 160 else ""))) from None
        raise
    from schedtui.engine import ddp

    d = ddp.current()
    if d is not None:
        from torch.nn.parallel import DistributedDataParallel

        if not any(p.requires_grad for p in parts.model.parameters()):
            raise UserError("a data-parallel run needs a model with trainable parameters")
        parts.ddp_model = DistributedDataParallel(parts.model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    return parts


_NO_MEMORY = ("not enough memory to build the run ({why}); make it smaller: data.n_samples, model.hidden or "
              "model.width, data.batch_size")


def _build_run(cfg: dict, data_dir: str | Path) -> RunParts:
    from schedtui.engine import ddp

    d = ddp.current()
    device = d.device if d is not None else resolve_device(cfg["device"])
    if cfg["engine"]["threads"]:
        torch.set_num_threads(cfg["engine"]["threads"])
    seed_everything(cfg["seed"])
    if cfg.get("experiment"):  # a factory gives the pieces (schedtui run module:function)
        p = experiment_pieces(cfg, device, data_dir)
        parts = assemble(cfg, device, p.data, p.model, p.optimizer, p.loss, p.knobs, p.metrics, len(p.data.train),
                         scheduler=p.scheduler, skip_knobs=("grad_clip",) if p.manual else ())
        if p.train_step is not None:
            from schedtui.engine.custom_step import StepContext

            parts.train_step, parts.eval_step, parts.manual = p.train_step, p.eval_step, p.manual
            parts.ctx = StepContext(parts.optimizers, device)
        return parts
    else:
        data = build_data(cfg["data"], device, cfg["seed"], data_dir)
        model = build_model(cfg["model"], data.input_shape, data.n_classes).to(device)
        if device.type == "cuda" and cfg["model"].get("channels_last"):
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(model, cfg["optimizer"], fused=device.type == "cuda")
        loss = WeightedLoss(model, data.task, cfg["loss"]["terms"], cfg["loss"]["label_smoothing"])
    return assemble(cfg, device, data, model, optimizer, loss, [], {}, len(data.train))


def fused(optimizer) -> bool:
    """Whether every group of the optimizer runs torch's fused kernels (which take a found-inf flag)."""
    return (not isinstance(optimizer, dict) and getattr(optimizer, "_step_supports_amp_scaling", False)
            and all(g.get("fused") for g in optimizer.param_groups))


def nonfinite_check(cfg: dict, device, optimizer) -> str:
    """engine.nonfinite_check resolved: "step", "device" or "read" (see the config schema)."""
    mode = cfg["engine"].get("nonfinite_check", "auto")
    if mode == "auto":
        return "step" if device.type == "cpu" else ("device" if fused(optimizer) else "read")
    if mode == "device" and not fused(optimizer):
        raise UserError("engine.nonfinite_check = \"device\" needs a fused optimizer (fused=True: SGD, Adam, AdamW, "
                        "Adagrad); the built-in ones are fused on CUDA")
    return mode


def _check_closure(optimizer, amp_dtype) -> None:
    from schedtui.engine.custom_step import needs_closure

    if not isinstance(optimizer, dict) and needs_closure(optimizer) and amp_dtype == torch.float16:
        raise UserError(f"{type(optimizer).__name__} steps with a closure, which fp16 loss scaling does not support: "
                        'use engine.amp = "bf16" or "off"')


def assemble(cfg: dict, device, data, model, optimizer, loss, extra_knobs: list, metrics: dict, steps_per_epoch: int,
             skip_knobs: tuple = (), scheduler=None) -> RunParts:
    """Knobs, schedules, SWA/EMA and early stopping around built pieces (a preset's, a factory's, an own loop's);
    `scheduler`: the user's own (an `engine.adopted.AdoptedScheduler`), the base schedule of what it drives."""
    clip = Holder(cfg["optimizer"]["grad_clip"])
    knobs, initial, defaults, knob_of = build_knobs(model, optimizer, loss, clip, cfg)
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
    given = {}
    if scheduler is not None:
        mine = next(knob_of[n] for n, o in (optimizer if isinstance(optimizer, dict) else {"": optimizer}).items()
                    if o is scheduler.optimizer)
        scheduler.bind(mine, steps_per_epoch)
        given = {mine[s]: scheduler.schedule_for(s) for s in scheduler.settings if s in mine}
        specs = {k: v for k, v in specs.items() if k not in given}
    schedules = KnobSchedules(initial, specs, {k: kn.bounds for k, kn in knobs.items()}, timing, given)
    _check_planned_edits(cfg["edits"], knobs, timing)
    adopted = set(knobs) - set(cfg["schedules"])
    _check_closure(optimizer, _amp_dtype(cfg["engine"]["amp"], device))
    nonfinite_check(cfg, device, optimizer)
    return RunParts(cfg, device, model, optimizer, data, loss, clip, knobs, schedules, timing,
                    _amp_dtype(cfg["engine"]["amp"], device), averaging, early_stop, metrics, adopted, scheduler)
