"""Checkpoints: the whole training state at a step boundary, to resume a run exactly where it was.

Contract:
- `capture(core, reason)` (a `RunCore`, on its training thread, at a step
  boundary, after the pending losses are read; only its public state) returns a dict of tensors, dicts, lists, tuples and
  str/int/float/bool/None only, so it loads with `torch.load(path, weights_only=True)`:
  `format`/`version`, the run's identity (`run_id`, `config_hash` of the config without
  its device, `steps_per_epoch`), `step`, `epoch`, `position` (the next epoch and batch
  index to train), `model`, `optimizer`, `scaler` (GradScaler or None), `schedules`
  (`KnobSchedules.state_dict`: active edits and the observed metrics that drive
  ReduceLROnPlateau), `knobs` (the values in use), `rng` (torch CPU, CUDA when it is in
  use, python `random`, and the data loader's transform generator mid-epoch), `engine`
  (samples seen, active seconds, best metrics, the epoch's losses so far, the planned
  edits still to apply and a rerun's stopping point), and `stateful` (every component
  registered in `engine.stateful`, by name: its `state_dict()`).
- `save(path, state, latest=True)` writes atomically (a temporary file, fsync, rename)
  and then points `checkpoints/latest` at it (also atomically); `finite(state)` says
  whether its weights are all finite (`latest` never names one that is not).
- `find(run_dir, explicit=None)` names the checkpoint to resume from: `explicit`
  (a path, or a file name inside `checkpoints/`), else the one `latest` names, else
  the highest step. Needs no torch.
- `read(path, device)` loads one with `weights_only=True` and refuses, with a one-line
  UserError, a file that is not a checkpoint, is of another format version, or lacks
  (or has of another type) a key that `restore` reads.
- `restore(core, state)` puts a built (not started) run core and its driver back in that state, or
  raises UserError when the checkpoint does not fit the run (another run, config,
  model, optimizer or set of knobs / components).

torch is imported inside the functions that need it, so `find` costs nothing.
Must not import textual or rich.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from pathlib import Path

from schedtui.errors import UserError
from schedtui.safe_text import visible

FORMAT = "schedtui-checkpoint"
VERSION = 2  # 1: written before resume existed (model, optimizer, edits only); not resumable
LATEST = "latest"
_NAME = re.compile(r"step-(\d+)\.pt")


def file_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def config_hash(cfg: dict) -> str:
    """A fingerprint of the config a checkpoint was written under; the device may change on resume."""
    text = json.dumps({k: v for k, v in cfg.items() if k != "device"}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- writing ------------------------------------------------------------------------------------
def capture(core, reason: str) -> dict:
    """The checkpoint of a run core (at a boundary, its pending losses read): the core's state, its driver's
    (`core.loop`: the position in the data, the GradScaler) and the RNG states."""
    import torch

    c = core.state_dict()
    loop = core.loop.state_dict() if core.loop is not None else {}
    position = loop.get("position") or {"epoch": c["epoch"], "batch": 0}
    rng = {"torch": torch.get_rng_state(), "cuda": _cuda_rng(), "python": _python_rng(), "loader": loop.get("loader_rng")}
    ranks = core.dist.gather(rng) if core.dist is not None else None  # every rank's own random state
    return {
        "format": FORMAT, "version": VERSION, "reason": reason,
        "run_id": core.log.header.get("run_id"), "config_hash": config_hash(core.parts.cfg),
        "steps_per_epoch": core.parts.timing.steps_per_epoch,
        "step": c["step"], "epoch": c["epoch"], "position": position,
        "model": c["model"], "optimizer": c["optimizer"], "scaler": loop.get("scaler"),
        "schedules": c["schedules"], "knobs": c["knobs"],
        "rng": rng, "world_size": 1 if ranks is None else len(ranks), **({"ranks": ranks} if ranks is not None else {}),
        "engine": c["engine"],
        "stateful": {name: _plain(v, name) for name, v in c["stateful"].items()},
    }


def _plain(obj, where: str):
    """`obj` if it holds only what `torch.load(weights_only=True)` reads back; TypeError naming the part if not."""
    import torch

    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            _plain(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _plain(v, f"{where}[{i}]")
    elif not isinstance(obj, (torch.Tensor, str, int, float, bool, type(None))):
        raise TypeError(f"{where} is a {type(obj).__name__}, which a weights_only load cannot read")
    return obj


def _cuda_rng():
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():  # never start CUDA just to save its RNG
        return torch.cuda.get_rng_state_all()
    return None


def _python_rng() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def finite(state: dict) -> bool:
    """Whether every floating-point tensor of the model in `state` is finite (one host-device sync per tensor)."""
    import torch

    return all(torch.isfinite(t).all().item() for t in state["model"].values()
               if isinstance(t, torch.Tensor) and t.is_floating_point())


def save(path: Path, state: dict, latest: bool = True) -> Path:
    """Write `state` to `path` atomically and (with `latest`) make it the run's latest checkpoint."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if not latest:
        return path
    pointer = path.parent / LATEST
    tmp = pointer.with_name(LATEST + ".tmp")
    tmp.write_text(path.name + "\n", encoding="utf-8")
    os.replace(tmp, pointer)
    return path


FINAL = ("completed", "stopped", "interrupted")  # the checkpoint a run ends with


def write(core, reason: str) -> dict:
    """Checkpoint a run core at its boundary (pending losses read): once the log holds every step up to it
    (fsynced); weights that are not finite go to `step-N.nonfinite.pt`, never `latest`; a full disk pauses the
    run (a manual checkpoint also tells its sender). Returns the `checkpoint` (or `warning`) event."""
    path = Path(core.run_dir) / "checkpoints" / file_name(core.step)
    good = True
    try:
        state = capture(core, reason)  # on every rank: each one's random state goes in
        good = finite(state)
        if not good:  # kept for a post-mortem, never resumed from by default
            path = path.with_name(path.stem + ".nonfinite.pt")
        if core.dist is None or core.dist.main:
            core.log.flush(wait=True, sync=True)  # the log reaches the disk through this step before the checkpoint
            save(path, state, latest=good)
    except Exception as e:  # a full disk, or a component whose state cannot be saved
        why = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
        ev = core.emit("warning", message=f"checkpoint at step {core.step} not written: {why}")
        if isinstance(e, OSError) and reason not in FINAL:  # the disk: pause until it can be written
            core.commands.checkpoint_owed = reason != "manual"
            core.commands.pause_for_disk(f"cannot write a checkpoint ({why})")
        if reason == "manual":
            raise UserError(ev["message"]) from None
        return ev
    if not good:
        core.emit("warning", message=f"the checkpoint at step {core.step} holds non-finite weights: written as "
                                     f"{path.name}, which resume takes only with --from; checkpoints/latest still "
                                     "names the last good one")
    ev = core.emit("checkpoint", path=str(path), reason=reason, **({} if good else {"nonfinite": True}))
    core.log.flush(wait=False)
    return ev


# ---- finding and reading ------------------------------------------------------------------------
def find(run_dir: Path, explicit: str | None = None) -> Path | None:
    folder = Path(run_dir) / "checkpoints"
    if explicit is not None:
        try:
            p = Path(explicit).expanduser()
            if not p.is_file() and (folder / explicit).is_file():
                p = folder / explicit
            found = p.is_file()
        except (OSError, ValueError):  # a name the file system cannot look up (a NUL byte, too long)
            found = False
        if not found:
            raise UserError(f"--from {visible(explicit)}: no such checkpoint file")
        return p
    try:
        pointer = folder / LATEST
        if pointer.is_file() and pointer.stat().st_size < 4096:  # never a FIFO or a device: reading could block
            name = pointer.read_text(encoding="utf-8").strip()
            if _NAME.fullmatch(name) and (folder / name).is_file():
                return folder / name
    except (OSError, UnicodeDecodeError):
        pass
    found = sorted((int(m.group(1)), f) for f in folder.glob("step-*.pt") if (m := _NAME.fullmatch(f.name)))
    return found[-1][1] if found else None


def listed(run_dir: Path) -> list[Path]:
    """The run's checkpoint files, by step."""
    found = [(step_of(f), f) for f in (Path(run_dir) / "checkpoints").glob("step-*.pt")]
    return [f for step, f in sorted(found) if step >= 0]


def step_of(path: Path) -> int:
    m = _NAME.fullmatch(Path(path).name)
    return int(m.group(1)) if m else -1


def read(path: Path, device) -> dict:
    import pickle

    import torch

    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable schedtui checkpoint ({why[:120]})") from None
    except Exception as e:  # torch.load on a file of another kind raises more than it documents (IndexError...)
        raise UserError(f"{path}: not a readable schedtui checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a schedtui checkpoint (no format {FORMAT!r})")
    v = state.get("version")
    if v != VERSION:
        newer = isinstance(v, int) and not isinstance(v, bool) and v > VERSION
        raise UserError(f"{path}: checkpoint version {v!r:.40} was written by {'a newer' if newer else 'an older'} "
                        f"schedtui; this one resumes version {VERSION}")
    where = _missing(state, _SHAPE, "")
    if where:
        raise UserError(f"{path}: a damaged checkpoint ({where}); resume from another with --from")
    return state


_OPTIONAL = object()  # the key may be None
_NUM = (int, float)
# What `restore` reads, key by key: a type, a nested shape (dict), or a tuple of types (None allowed where listed).
_SHAPE = {
    "run_id": (str, type(None)), "config_hash": str, "steps_per_epoch": int, "step": int, "epoch": int,
    "position": {"epoch": int, "batch": int},
    "model": dict, "optimizer": dict, "scaler": (dict, type(None)),
    "schedules": {"overrides": dict, "observed": list},
    "knobs": dict,
    "rng": {"torch": "tensor", "cuda": (list, tuple, type(None)), "python": (list, tuple), "loader": _OPTIONAL},
    "engine": {"samples": int, "active_s": _NUM, "best": dict, "epoch_losses": list, "plan": list,
               "rerun": (dict, type(None))},
    "stateful": dict,
}


def _missing(state: dict, shape: dict, prefix: str) -> str | None:
    """What in `state` does not have `shape` (a missing key, a value of another type), or None."""
    import torch

    for key, want in shape.items():
        name = f"{prefix}{key}"
        if key not in state:
            return f"no {name}"
        v = state[key]
        if isinstance(want, dict):
            if not isinstance(v, dict):
                return f"{name} is not a table"
            inner = _missing(v, want, name + ".")
            if inner:
                return inner
        elif want is _OPTIONAL:
            continue
        elif want == "tensor":
            if not isinstance(v, torch.Tensor):
                return f"{name} is not a tensor"
        elif isinstance(v, bool) and bool not in (want if isinstance(want, tuple) else (want,)) \
                or not isinstance(v, want):
            return f"{name} is a {type(v).__name__}"
    if prefix == "":
        if state["step"] < 0 or state["steps_per_epoch"] < 1:
            return "a negative step, or no steps in an epoch"
        if not all(isinstance(k, str) and isinstance(x, _NUM) and not isinstance(x, bool) for k, x in state["knobs"].items()):
            return "knobs are not numbers"
        python = state["rng"]["python"]
        if len(python) != 3 or not isinstance(python[1], (list, tuple)):
            return "rng.python is not a random state"
        if not all(isinstance(p, (list, tuple)) and len(p) == 3 and isinstance(p[0], int) and isinstance(p[2], dict)
                   for p in state["engine"]["plan"]):
            return "engine.plan is not a list of [step, command, arguments]"
        if not all(isinstance(ov, dict) and isinstance(ov.get("op"), str) and isinstance(ov.get("step"), int)
                   for ov in state["schedules"]["overrides"].values()):
            return "schedules.overrides are not edits"
    return None


# ---- restoring ----------------------------------------------------------------------------------
def restore(core, state: dict, path: Path | str = "checkpoint") -> None:
    """Put a built (not started) run core and its driver back in the checkpoint's state; UserError when it
    does not fit the run."""
    import torch

    p = core.parts
    if state["config_hash"] != config_hash(p.cfg) or state["steps_per_epoch"] != p.timing.steps_per_epoch:
        raise UserError(f"{path}: written under another config than this run's log header (config or data changed)")
    if set(state["knobs"]) != set(p.knobs):
        raise UserError(f"{path}: its knobs ({', '.join(state['knobs'])}) are not this run's ({', '.join(p.knobs)})")
    if set(state["stateful"]) != set(core.stateful):
        raise UserError(f"{path}: saved components {sorted(state['stateful'])}, this run has {sorted(core.stateful)}")
    world = core.dist.world if core.dist is not None else 1
    if state.get("world_size", 1) != world:
        raise UserError(f"{path}: written by a run of {state.get('world_size', 1)} process(es); this one has {world}: "
                        "resume it with the same torchrun --nproc-per-node (its data order and random states are per rank)")
    rng = state["ranks"][core.dist.rank] if core.dist is not None else state["rng"]
    try:
        core.load_state_dict(state)
        if core.loop is not None:
            core.loop.load_state_dict({"position": state["position"], "scaler": state["scaler"],
                                       "loader_rng": rng["loader"]})
    except (RuntimeError, ValueError, KeyError) as e:
        raise UserError(f"{path}: does not fit this run ({str(e).strip().splitlines()[0][:160]})") from None
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"] is not None and torch.cuda.is_available():
        for i, s in enumerate(rng["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))


def load_optimizer(opt, state: dict) -> None:
    """`Optimizer.load_state_dict` replaces the param-group dicts; the knobs hold the old ones, so the
    loaded values go back into those."""
    groups = opt.param_groups
    old = list(groups)
    opt.load_state_dict(state)
    for mine, loaded in zip(old, opt.param_groups):
        mine.clear()
        mine.update(loaded)
    groups[:] = old
    opt.param_groups = groups
