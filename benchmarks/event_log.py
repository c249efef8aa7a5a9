"""The event log: how fast a run can write it, and how fast `schedtui replay` loads a million steps of it.

    .venv/bin/python benchmarks/event_log.py                  # 1,000,000 steps (~15 s in all)
    .venv/bin/python benchmarks/event_log.py --steps 200000 --app-runs 0

1. Write: `EventLog.emit` from one thread, as the engine calls it: a `step` event per
   update (epoch, loss, the knob values, samples/s; seven knobs, two of them moving),
   an `eval` and an `epoch` event every 1,000 steps, an `edit` every 50,000, then
   `close()` (everything encoded by the writer thread, written and flushed). Rate =
   events / (time from the first emit to `close()` returning): what the log sustains
   end to end. The emit-only rate (the training thread's cost) and the peak resident
   memory (the writer's queue is unbounded) are reported beside it.
2. Load: the log just written, opened for replay: `Timeline(path).load()`, median of
   `--runs` (`replay_open.measure`: its wall time, its peak Python memory under
   tracemalloc, and reading a random step back), and with `--app-runs` the whole
   replay app opening it in a fresh interpreter (`replay_app_open.py`'s child:
   imports, Textual start, load, first frame).

Targets: >= 200,000 events/s written; a million steps loaded in < 2 s. Exits 1 when
one is missed (unless `--no-check`).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import finish, machine_line, print_table  # noqa: E402

STEPS_PER_EPOCH = 1000
EDIT_EVERY = 50_000


def write(path: Path, steps: int, batch: int = 1) -> dict:
    """Write a `steps`-step engine-shaped log at `path`, step events one `emit` each (`batch` 1) or `batch` at a
    time through `emit_many` (as the engine does); time it. The events' values are made beforehand, so the
    loop times the log, not the making of its input."""
    from schedtui.events import EventLog

    rng = random.Random(0)
    names = ("lr", "momentum", "weight_decay", "dropout", "label_smoothing", "grad_clip", "loss@task")
    knob_sets = [{"lr": 0.1 * rng.random(), "momentum": 0.9, "weight_decay": 5e-4 + i * 1e-9, "dropout": 0.1,
                  "label_smoothing": 0.0, "grad_clip": 0.0, "loss@task": 1.0} for i in range(4096)]
    losses = [rng.random() for _ in range(4096)]
    epochs = -(-steps // STEPS_PER_EPOCH)
    header = {"run_id": "bench", "preset": "synthetic", "config": {"name": "synthetic", "epochs": epochs, "seed": 0},
              "steps_per_epoch": STEPS_PER_EPOCH, "device": "cpu", "knobs": {k: "constant" for k in names}}
    log = EventLog(path, header)
    emit, emit_many = log.emit, log.emit_many
    events, pending = 0, []
    t0 = time.perf_counter()
    for k in range(1, steps + 1):
        epoch = (k - 1) // STEPS_PER_EPOCH
        loss = losses[k & 4095]
        if batch > 1:
            pending.append((k, {"epoch": epoch, "loss": loss, "knobs": knob_sets[k & 4095], "samples_per_s": 12345.67}))
            if len(pending) >= batch:
                emit_many("step", pending)
                pending = []
        else:
            emit("step", k, epoch=epoch, loss=loss, knobs=knob_sets[k & 4095], samples_per_s=12345.67)
        if k % EDIT_EVERY == 0 or k % STEPS_PER_EPOCH == 0 or k == steps:
            if pending:
                emit_many("step", pending)
                pending = []
            if k % EDIT_EVERY == 0:
                emit("edit", k, knob="dropout", op="set", value=0.05, old=0.1, new=0.05)
                events += 1
            if k % STEPS_PER_EPOCH == 0 or k == steps:
                emit("eval", k, split="val", model="raw", loss=loss, acc=min(0.99, k / steps), reason="epoch")
                emit("epoch", k, epoch=epoch, epochs=epochs, elapsed_s=k * 1e-3, eta_s=(steps - k) * 1e-3,
                     samples_per_s=12345.67, train_loss=loss, val_loss=loss, val_acc=min(0.99, k / steps))
                events += 2
    emit("end", steps, status="completed")
    events += steps + 1
    t_emit = time.perf_counter() - t0
    log.close()
    t_all = time.perf_counter() - t0
    return {"steps": steps, "batch": batch, "events": events, "emit_s": t_emit, "total_s": t_all,
            "events_per_s": events / t_all, "emit_per_s": events / t_emit, "size_mb": path.stat().st_size / 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def app_open(path: Path, runs: int) -> list[float]:
    """Seconds from interpreter start to the replay app showing the whole log (replay_app_open.py's child)."""
    from replay_app_open import CHILD

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3, help="Timeline loads (median)")
    ap.add_argument("--app-runs", type=int, default=3, help="whole replay-app opens in a fresh interpreter (0: skip)")
    ap.add_argument("--min-rate", type=float, default=200_000, help="events/s written, at least")
    ap.add_argument("--max-load", type=float, default=2.0, help="seconds to load the log, at most")
    ap.add_argument("--json", help="default benchmarks/results/event_log.json")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args(argv)
    from replay_open import measure

    with tempfile.TemporaryDirectory(prefix="schedtui-eventlog-") as tmp:
        path = Path(tmp) / "events.jsonl"
        w = write(path, args.steps)
        load = measure(path, runs=args.runs, lookups=50)
        apps = app_open(path, args.app_runs) if args.app_runs else []
    app = statistics.median(apps) if apps else None
    rows = [
        ["write (emit to close, flushed)", f"{w['events_per_s']:,.0f} events/s",
         f"{w['events']:,} events, {w['size_mb']:.0f} MB in {w['total_s']:.2f} s", f">= {args.min_rate:,.0f}/s"],
        ["  emit only (training thread)", f"{w['emit_per_s']:,.0f} events/s", f"peak RSS {w['peak_rss_mb']:.0f} MB", ""],
        ["load for replay (Timeline)", f"{load['load_s']:.3f} s", f"peak Python memory {load['peak_mb']:.1f} MB; "
         f"a step read back in {load['lookup_ms']:.2f} ms", f"< {args.max_load} s"],
    ]
    if app is not None:
        rows.append(["replay app open (fresh process)", f"{app:.2f} s", "imports, Textual, load, first frame", ""])
    print_table(["", "result", "", "target"], rows, title=f"event log: {args.steps:,} steps; {machine_line()}")
    missed = []
    if w["events_per_s"] < args.min_rate:
        missed.append(f"write {w['events_per_s']:,.0f}/s < {args.min_rate:,.0f}/s")
    if load["load_s"] > args.max_load:
        missed.append(f"load {load['load_s']:.3f} s > {args.max_load} s")
    return finish("event_log", {"write": w, "load": dict(load), "app_open_s": apps, "app_open_median_s": app}, missed, args)


if __name__ == "__main__":
    sys.exit(main())
