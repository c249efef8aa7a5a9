"""On a CUDA device: no host-device sync per training step, and the cifar10 preset's time to 93% accuracy.

    .venv/bin/python benchmarks/cuda.py                          # the sync check (a few seconds)
    .venv/bin/python benchmarks/cuda.py --data-dir ~/data --time-to-accuracy   # + cifar10 to 93% (real CIFAR-10)
    .venv/bin/python benchmarks/cuda.py --device cpu --steps 4   # the same machinery on the CPU (no sync check)

1. Syncs: a CIFAR-shaped run (the cifar10 preset's model and schedules without its
   SWA tail, `--steps` updates in one epoch over random images written in CIFAR's format, or the real data with
   `--data-dir`) under `torch.cuda.set_sync_debug_mode("error")`: any operation that
   synchronises with the host raises, and the run would end `crashed`. The places
   meant to sync are let through and counted: the batched loss reads
   (`Engine._read_losses`, one per `engine.read_every` updates), the evaluation's
   final read, the epoch's permutation copy and the checkpoint at the end. The
   result: syncs per update (expected about 1/read_every), and the run's status.
2. With `--time-to-accuracy`: the cifar10 preset as shipped (ResNet-9, 24 epochs,
   bf16 autocast where supported) on the real CIFAR-10 in `--data-dir` (nothing is
   downloaded), headless: the time of the first evaluation at or above `--target`
   (93%), the final accuracy and the samples/s, for the README.

Without CUDA (and without `--device cpu`) it writes `{"skipped": ...}` and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fake_cifar, machine_line, print_table, write_json  # noqa: E402


@contextlib.contextmanager
def sync_check(enabled: bool):
    """Sync debug mode "error" for the run, except inside the places meant to sync; counts them."""
    import torch

    from schedtui.engine import core, engine, loader, steps

    counts: dict = {}
    if not enabled:
        yield counts
        return

    def allowed(fn, name):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            if name != "loss reads" or a[0].pending:  # a read with nothing pending does nothing
                counts[name] = counts.get(name, 0) + 1
            torch.cuda.set_sync_debug_mode(0)
            try:
                return fn(*a, **k)
            finally:
                torch.cuda.set_sync_debug_mode("error")
        return wrapper

    patches = [(steps.StepRecorder, "read", "loss reads"), (engine, "evaluate", "evaluations"),
               (loader.DeviceLoader, "_permutation", "epoch permutations"), (core.RunCore, "checkpoint", "checkpoints")]
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patches]
    for obj, attr, name in patches:
        setattr(obj, attr, allowed(getattr(obj, attr), name))
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield counts
    finally:
        torch.cuda.set_sync_debug_mode(0)
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)


def sync_run(args, tmp: Path) -> dict:
    from schedtui.config import load_config
    from schedtui.events import read_log
    from schedtui.launch import start_run

    data_dir = Path(args.data_dir).expanduser() if args.data_dir else tmp / "data"
    n = args.batch * args.steps  # one epoch of `steps` updates (the real data has 50,000 images at most)
    sets = [f"device={args.device!r}".replace("'", '"'), "data.download=false", f"data.batch_size={args.batch}",
            f"data.train_subset={min(n, 50_000)}", "epochs=1", "swa={}"]  # the SWA tail (a sync per epoch) left out
    if not args.data_dir:
        fake_cifar(data_dir, n, 500)
        sets.append("data.verify=false")
    cfg, _ = load_config("cifar10", sets)
    run = start_run(cfg, data_dir, tmp / "runs", start=False)
    engine = run.engine
    with sync_check(args.device.startswith("cuda")) as counts:
        t0 = time.perf_counter()
        engine.start()
        engine.join()
        seconds = time.perf_counter() - t0
    log = read_log(run.run_dir / "events.jsonl")
    errors = [e.get("message") for e in log.events if e["type"] == "error"]
    return {"device": str(engine.parts.device), "steps": engine.step, "read_every": engine.core.recorder.read_every,
            "status": engine.status, "errors": errors, "syncs": counts,
            "loss_reads_per_step": counts.get("loss reads", 0) / max(engine.step, 1), "seconds": seconds,
            "traceback": (run.run_dir / "traceback.txt").read_text()[-3000:] if errors else None}


def time_to_accuracy(args, tmp: Path) -> dict:
    import io

    from rich.console import Console

    from schedtui.config import load_config
    from schedtui.events import read_log
    from schedtui.events.state import RunState
    from schedtui.headless import run_headless
    from schedtui.launch import start_run

    cfg, _ = load_config("cifar10", [f"device={args.device!r}".replace("'", '"'), "data.download=false"])
    run = start_run(cfg, Path(args.data_dir).expanduser(), tmp / "runs", start=False)
    run.engine.start()
    run_headless(run.engine, run.events, RunState.from_header(run.header), Console(file=io.StringIO()))
    log = read_log(run.run_dir / "events.jsonl")
    evals = [e for e in log.events if e["type"] == "eval" and e.get("model") == "raw"]
    hit = next((e for e in evals if e.get("acc", 0) >= args.target), None)
    epochs = [e for e in log.events if e["type"] == "epoch"]
    return {"status": run.engine.status, "target": args.target, "reached_at_s": hit["time"] if hit else None,
            "reached_at_step": hit["step"] if hit else None, "final_acc": evals[-1]["acc"] if evals else None,
            "best_acc": max((e["acc"] for e in evals), default=None), "elapsed_s": epochs[-1]["elapsed_s"] if epochs else None,
            "samples_per_s": epochs[-1].get("samples_per_s") if epochs else None,
            "averaged": [e for e in log.events if e["type"] == "eval" and e.get("model") != "raw"][-1:]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--data-dir", help="real CIFAR-10 (cifar-10-batches-py/); default: random images")
    ap.add_argument("--time-to-accuracy", action="store_true", help="also train the cifar10 preset to --target")
    ap.add_argument("--target", type=float, default=0.93)
    ap.add_argument("--json", help="default benchmarks/results/cuda.json")
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        path = write_json("cuda", {"skipped": "no CUDA device here"}, args.json)
        print(f"cuda: skipped (no CUDA device here); {machine_line()}\nresults: {path}")
        return 0
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else None
    with tempfile.TemporaryDirectory(prefix="schedtui-cuda-") as tmp:
        sync = sync_run(args, Path(tmp))
        tta = time_to_accuracy(args, Path(tmp)) if args.time_to_accuracy and args.data_dir else None
    rows = [["sync check", sync["status"], f"{sync['steps']} updates, {sync['syncs'] or 'no sync check'}",
             f"{sync['loss_reads_per_step']:.3f} loss reads/update (read_every {sync['read_every']})"]]
    if tta:
        rows.append(["cifar10 to %.0f%%" % (100 * args.target), tta["status"],
                     f"{tta['reached_at_s']:.1f} s (step {tta['reached_at_step']})" if tta["reached_at_s"] else "not reached",
                     f"final {tta['final_acc']:.2%}, {tta['samples_per_s']:.0f} samples/s"])
    print_table(["", "status", "", ""], rows, title=f"cuda: {gpu or args.device}; {machine_line()}")
    path = write_json("cuda", {"gpu": gpu, "sync": sync, "time_to_accuracy": tta}, args.json)
    print(f"results: {path}")
    ok = sync["status"] in ("completed", "stopped") and not sync["errors"]
    if not ok:
        print(f"the run ended {sync['status']}: {sync['errors']}\n{sync['traceback'] or ''}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
