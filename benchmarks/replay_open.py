"""How fast `schedtui replay` opens a long run: `Timeline(path).load()` on a million-step log.

The target (issue: "a log of a million steps opens in under two seconds with bounded
memory") is checked here, not in the test suite, where timings would be flaky:

    .venv/bin/python benchmarks/replay_open.py                  # 1,000,000 steps, ~10 s to write
    .venv/bin/python benchmarks/replay_open.py --steps 200000   # a quicker look
    .venv/bin/python benchmarks/replay_open.py --log /tmp/big.jsonl   # write it once, reuse it after

The log is written with the real `EventLog` writer, shaped like the engine's: a step
event per step (epoch, loss, knobs, samples/s), an eval and an epoch event every 1000
steps, an edit every 50,000. Reported as medians of `--runs` runs: the load's wall
time, its peak Python memory (tracemalloc, in separate runs since tracing slows it
down) and the time of `step_event(k)` for `--lookups` random k. Exits 1 when the
median load time exceeds `--budget` (default 1.5 s: the app's own start-up needs
the rest of the 2 s).
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from schedtui.events import EventLog
from schedtui.events.timeline import Timeline

STEPS_PER_EPOCH = 1000
EDIT_EVERY = 50_000


def generate(path, steps: int = 1_000_000, seed: int = 0) -> Path:
    """Write a `steps`-step log at `path` (which must not exist) with the real writer."""
    path = Path(path)
    epochs = math.ceil(steps / STEPS_PER_EPOCH)
    rng = random.Random(seed)
    header = {"run_id": "bench", "preset": "synthetic", "config": {"name": "synthetic", "epochs": epochs, "seed": seed},
              "steps_per_epoch": STEPS_PER_EPOCH, "knobs": {"lr": 0.1, "dropout": 0.1}, "device": "cpu"}
    lr, dropout = 0.1, 0.1
    with EventLog(path, header) as log:
        emit = log.emit
        for k in range(1, steps + 1):
            epoch = (k - 1) // STEPS_PER_EPOCH
            loss = 2.5 * math.exp(-k / (steps / 4)) + 0.05 * rng.random()
            emit("step", k, epoch=epoch, loss=loss, knobs={"lr": lr * (1 - k / (steps + 1)), "dropout": dropout},
                 samples_per_s=1234.5)
            if k % EDIT_EVERY == 0:
                new = round(dropout * 0.9, 6)
                emit("edit", k, knob="dropout", op="set", value=new, old=dropout, new=new)
                dropout = new
            if k % STEPS_PER_EPOCH == 0 or k == steps:
                emit("eval", k, split="val", model="raw", loss=loss * 1.1, acc=min(0.99, k / steps), reason="epoch")
                emit("epoch", k, epoch=epoch, epochs=epochs, elapsed_s=k * 0.001, eta_s=(steps - k) * 0.001,
                     samples_per_s=1234.5, train_loss=loss, val_loss=loss * 1.1, val_acc=min(0.99, k / steps))
        emit("end", steps, status="completed")
    return path


def _load(path, capacity: int) -> Timeline:
    tl = Timeline(path, capacity=capacity)
    tl.load()
    return tl


def measure(path, runs: int = 3, lookups: int = 100, capacity: int = 2048, seed: int = 0) -> dict:
    """Medians over `runs`: load seconds, peak traced bytes during load, seconds per step_event."""
    load_s, peak_b, lookup_s = [], [], []
    tl = None
    for _ in range(runs):
        tl = None
        gc.collect()
        t0 = time.perf_counter()
        tl = _load(path, capacity)
        load_s.append(time.perf_counter() - t0)
    assert tl is not None
    if tl.warnings:
        print(f"warnings: {tl.warnings[:3]}", file=sys.stderr)
    for _ in range(runs):
        gc.collect()
        tracemalloc.start()
        try:
            _load(path, capacity)
            peak_b.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    rng = random.Random(seed)
    for _ in range(runs):
        ks = [rng.randint(1, tl.last_step) for _ in range(lookups)]
        t0 = time.perf_counter()
        for k in ks:
            ev = tl.step_event(k)
            if ev is None or ev.get("step") != k:
                raise AssertionError(f"step_event({k}) returned {ev!r}")
        lookup_s.append((time.perf_counter() - t0) / lookups)
    return {"steps": tl.last_step, "events": len(tl.events), "buckets": len(tl.buckets(tl.last_step)),
            "size_mb": Path(path).stat().st_size / 1e6, "load_s": statistics.median(load_s), "load_all": load_s,
            "peak_mb": statistics.median(peak_b) / 1e6, "lookup_ms": statistics.median(lookup_s) * 1e3}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1_000_000, help="steps in the generated log (default 1,000,000)")
    ap.add_argument("--log", type=Path, help="use this log; generated here first if it does not exist")
    ap.add_argument("--budget", type=float, default=1.5, help="fail when the median load exceeds this many seconds")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lookups", type=int, default=100)
    ap.add_argument("--capacity", type=int, default=2048)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="schedtui-bench-") as tmp:
        path = args.log if args.log is not None else Path(tmp) / "events.jsonl"
        if not path.exists():
            t0 = time.perf_counter()
            generate(path, args.steps)
            print(f"wrote {path} ({args.steps:,} steps) in {time.perf_counter() - t0:.1f} s")
        r = measure(path, runs=args.runs, lookups=args.lookups, capacity=args.capacity)
    runs = ", ".join(f"{t:.3f}" for t in r["load_all"])
    rows = [
        ("log", f"{r['steps']:,} steps, {r['events']:,} other events, {r['size_mb']:.0f} MB"),
        ("buckets", f"{r['buckets']:,} (capacity {args.capacity})"),
        ("load (median)", f"{r['load_s']:.3f} s  (runs: {runs}; budget {args.budget} s)"),
        ("peak Python memory", f"{r['peak_mb']:.1f} MB"),
        ("step_event(k)", f"{r['lookup_ms']:.2f} ms each ({args.lookups} random k)"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if r["load_s"] > args.budget:
        print(f"FAIL: median load {r['load_s']:.3f} s is over the {args.budget} s budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
