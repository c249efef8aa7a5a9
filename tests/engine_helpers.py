"""Shared helpers for tests that start real (tiny, CPU) runs."""

from __future__ import annotations

from pathlib import Path

from schedtui.config import load_config
from schedtui.engine.engine import Engine
from schedtui.events import read_log
from schedtui.launch import start_run

TINY_MOONS = ["device=cpu", "data.n_samples=200", "model.hidden=[16]"]


def make_engine(tmp_path: Path, sets=(), preset="moons", data_dir=None, rerun=None) -> Engine:
    """A built, not yet started engine for a tiny run (the same path the CLI takes)."""
    cfg, _ = load_config(preset, [*TINY_MOONS, *sets] if preset == "moons" else list(sets))
    return start_run(cfg, data_dir or tmp_path / "data", tmp_path / "runs", start=False, rerun=rerun).engine


def run_to_end(engine: Engine, timeout: float = 120.0):
    engine.start()
    assert engine.join(timeout), "run did not finish"
    return read_log(engine.run_dir / "events.jsonl")


def of_type(log, t: str) -> list[dict]:
    return [e for e in log.events if e["type"] == t]
