"""A run's directory: RUNS_DIR/<preset>-<timestamp>/ with events.jsonl and config.toml.

Created exclusively: a second run in the same second gets a suffix, nothing is
ever overwritten. Always directly inside RUNS_DIR: a name that is not a safe run
name (`config.schema.name_problem`: it could be a path) is refused, and the
created directory is checked to resolve inside RUNS_DIR. The log's header records the full resolved config, seed,
device and versions. torch only for its version; no textual/rich.
"""

from __future__ import annotations

import platform
import shutil
from importlib import metadata
import time
import uuid
from pathlib import Path

import torch

import schedtui
from schedtui.config.dump import dumps
from schedtui.config.schema import name_problem
from schedtui.errors import UserError
from schedtui.events import EventLog, LogError


def make_run_dir(runs_dir: str | Path, preset: str) -> Path:
    why = name_problem(preset)
    if why:  # resolve() and rerun make names safe before this: a last guard, before anything is created
        raise UserError(f"run name: {why}")
    root = Path(runs_dir).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--runs-dir {root}: cannot create it ({e.strerror})") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        path = root / (f"{preset}-{stamp}" if i == 1 else f"{preset}-{stamp}-{i}")
        try:
            path.mkdir()
            if path.resolve().parent != root.resolve():  # a safe name cannot do this: the last word on it
                path.rmdir()
                raise UserError(f"--runs-dir {root}: the run directory {path} would not be inside it")
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise UserError(f"--runs-dir {root}: cannot create a run directory ({e.strerror})") from None
    raise UserError(f"--runs-dir {root}: too many runs started in one second")


def versions() -> dict:
    out = {"schedtui": schedtui.__version__, "torch": torch.__version__, "python": platform.python_version()}
    try:  # from the package metadata: importing torchvision costs over a second
        out["torchvision"] = metadata.version("torchvision")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency, but the log should not need it
        pass
    return out


def open_run(runs_dir: str | Path, cfg: dict, device: torch.device, extra_header: dict | None = None) -> tuple[Path, EventLog]:
    """Create the run directory, write config.toml, and open the event log with its header. When the disk takes
    none of it (full), a one-line UserError, and nothing is left behind."""
    run_dir = make_run_dir(runs_dir, cfg["name"])
    header = {"run_id": uuid.uuid4().hex[:12], "preset": cfg["name"], "config": cfg, "seed": cfg["seed"],
              "device": str(device), "versions": versions(), **(extra_header or {})}
    try:
        (run_dir / "config.toml").write_text(dumps(cfg), encoding="utf-8")
        log = EventLog(run_dir / "events.jsonl", header, flush_interval=cfg["engine"]["flush_interval"])
    except (OSError, LogError) as e:
        shutil.rmtree(run_dir, ignore_errors=True)
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UserError(f"{run_dir.parent}: cannot start a run there ({why}); nothing was left behind") from None
    return run_dir, log
