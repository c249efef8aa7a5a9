"""Shared helpers for tests that start real (tiny, CPU) runs."""

from __future__ import annotations

from pathlib import Path

from schedtui.config import load_config
from schedtui.engine.build import build_run
from schedtui.engine.engine import Engine
from schedtui.engine.rundir import open_run
from schedtui.events import read_log

TINY_MOONS = ["device=cpu", "data.n_samples=200", "model.hidden=[16]"]


def make_engine(tmp_path: Path, sets=(), preset="moons", data_dir=None):
    cfg, _ = load_config(preset, [*TINY_MOONS, *sets] if preset == "moons" else list(sets))
    parts = build_run(cfg, data_dir or tmp_path / "data")
    run_dir, log = open_run(tmp_path / "runs", cfg, parts.device, {"steps_per_epoch": parts.timing.steps_per_epoch})
    return Engine(parts, log, run_dir)


def run_to_end(engine: Engine, timeout: float = 120.0):
    engine.start()
    assert engine.join(timeout), "run did not finish"
    return read_log(engine.run_dir / "events.jsonl")


def of_type(log, t: str) -> list[dict]:
    return [e for e in log.events if e["type"] == t]
