"""What steering costs a data-parallel run: schedtui under torchrun against the same bare DDP loop, side by side.

    .venv/bin/python benchmarks/ddp.py                  # 2 CPU processes (gloo), 5 interleaved rounds
    .venv/bin/python benchmarks/ddp.py --rounds 3 --nproc 2 --json /tmp/ddp.json

Each round launches `torch.distributed.run --standalone --nproc-per-node N` twice, in a
rotating order: once this file's bare DDP loop, once schedtui's engine (its command
channel broadcasting at the default cadence, losses read as the ranks' mean, sharded
evaluation, a parameter digest each epoch, rank 0's log and final checkpoint). The
workload is the overhead benchmark's small CIFAR-shaped CNN (ResNet-9 at width 8 on
random images in CIFAR's format, SGD nesterov with a one-cycle lr, label smoothing),
each sample seen once per epoch across the ranks in the same seeded order, the batch
split between the ranks. Rank 0 times training from the first update to the end
(checkpoint included); the ratio is bare / schedtui within a round (1.0 = free), the
median over the rounds. Both train to the same weights (a hash), which the table
checks. Target: >= 0.98. Exits 1 when missed (unless `--no-check`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fake_cifar, finish, machine_line, median, print_table  # noqa: E402

TARGET = 0.98
PRESET = """
description = "benchmark: a small CIFAR-shaped CNN, data-parallel on the CPU"
seed = 0
epochs = {epochs}
device = "cpu"

[data]
kind = "cifar10"
batch_size = {batch}
download = false
verify = false

[model]
kind = "resnet9"
width = {width}
dropout = 0.0
bn_momentum = 0.1

[optimizer]
kind = "SGD"
lr = 0.4
momentum = 0.9
nesterov = true
weight_decay = 5e-4

[loss]
label_smoothing = 0.2

[schedules.lr]
kind = "OneCycleLR"
max_lr = 0.4
pct_start = 0.2
anneal_strategy = "linear"
div_factor = 20.0
final_div_factor = 200.0
cycle_momentum = false
unit = "step"
"""


def _config(args, tmp: Path) -> dict:
    from schedtui.config import load_config

    preset = tmp / "bench-ddp.toml"
    preset.write_text(PRESET.format(epochs=args.epochs, batch=args.batch, width=args.width))
    cfg, _ = load_config(str(preset), [])
    return cfg


def _weights(model) -> str:
    import hashlib

    h = hashlib.sha1()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ---- the children, one per rank under torchrun -------------------------------------------------------
def bare(args, cfg: dict) -> dict:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel

    from schedtui.engine.cifar import cifar_augment, cifar_normalize, load_cifar10
    from schedtui.engine.loader import epoch_seed
    from schedtui.engine.models import build_model

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    d, o, seed, epochs = cfg["data"], cfg["optimizer"], cfg["seed"], cfg["epochs"]
    torch.manual_seed(seed)
    x, y, xv, yv = load_cifar10(args.data_dir, "cpu", download=False, verify=False)
    model = build_model(cfg["model"], (3, 32, 32), 10)
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"],
                          weight_decay=o["weight_decay"])
    bs = d["batch_size"] // world
    n = x.shape[0]
    mine = (n - n % world) // world
    spe = mine // bs
    lr = {k: v for k, v in cfg["schedules"]["lr"].items() if k not in ("kind", "unit")}
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, total_steps=spe * epochs, **lr)
    augment = cifar_augment(d.get("crop_padding", 4), d.get("flip", True))
    val = torch.arange(rank, xv.shape[0], world)
    smoothing = cfg["loss"]["label_smoothing"]
    dist.barrier()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        gen = torch.Generator().manual_seed(epoch_seed(seed, epoch, 0))
        perm = torch.randperm(n, generator=gen)[: n - n % world][rank::world]
        agen = torch.Generator().manual_seed(epoch_seed(seed, epoch, 1 + 2 * rank))
        model.train()
        losses = []
        for b in range(spe):
            idx = perm[b * bs:(b + 1) * bs]
            xb, yb = augment(x.index_select(0, idx), agen), y.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(ddp(xb).float(), yb, label_smoothing=smoothing)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.detach())
        mean = torch.stack(losses).double()
        dist.all_reduce(mean)  # the mean over the ranks, once an epoch
        model.eval()
        with torch.no_grad():
            xs, ys = xv.index_select(0, val), yv.index_select(0, val)
            logits = model(cifar_normalize(xs))
            sums = torch.stack([F.cross_entropy(logits.float(), ys, reduction="sum").double(),
                                (logits.argmax(-1) == ys).sum().double(), torch.tensor(float(ys.shape[0]))])
            dist.all_reduce(sums)
    if rank == 0:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, Path(args.result).parent / "bare.pt")
    dist.barrier()
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "steps": spe * epochs, "weights": _weights(model)}
    dist.destroy_process_group()
    return out


def steered(args, cfg: dict) -> dict:
    import torch.distributed as dist

    from schedtui.engine import ddp
    from schedtui.launch import start_run

    run = start_run(cfg, args.data_dir, Path(args.result).parent / "runs", start=False)
    engine = run.engine
    dist.barrier()
    t0 = time.perf_counter()
    engine.start()
    engine.join()
    dist.barrier()
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "steps": engine.step, "status": engine.status, "weights": _weights(engine.parts.model)}
    ddp.teardown()
    return out


def child(args) -> None:
    import torch

    torch.set_num_threads(1)  # as torchrun sets OMP_NUM_THREADS: the cores are shared between the ranks
    cfg = _config(args, Path(args.result).parent)
    res = bare(args, cfg) if args.child == "bare" else steered(args, cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.result).write_text(json.dumps(res))


# ---- the parent ------------------------------------------------------------------------------------
def run_variant(variant: str, args, data_dir: Path, tmp: Path, i: int) -> dict:
    result = tmp / f"{variant}-{i}" / "result.json"
    result.parent.mkdir(parents=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(args.nproc),
           __file__, "--child", variant, "--data-dir", str(data_dir), "--result", str(result),
           "--epochs", str(args.epochs), "--batch", str(args.batch), "--width", str(args.width)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=args.timeout, env=env)
    if p.returncode != 0 or not result.exists():
        raise RuntimeError(f"{variant} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(result.read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="the global batch (split between the ranks)")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--images", type=int, default=3200)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", help="where to write the results (default benchmarks/results/ddp.json)")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--child", choices=("bare", "steered"), help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0
    t0 = time.perf_counter()
    runs: dict = {"bare": [], "steered": []}
    with tempfile.TemporaryDirectory(prefix="schedtui-ddp-") as tmp_:
        tmp = Path(tmp_)
        fake_cifar(tmp / "data", args.images, 500)
        for r in range(args.rounds):
            for v in (("bare", "steered") if r % 2 == 0 else ("steered", "bare")):
                res = run_variant(v, args, tmp / "data", tmp, r)
                runs[v].append(res)
                print(f"  round {r + 1}/{args.rounds} {v:8} {res['seconds']:.3f} s", file=sys.stderr, flush=True)
    ratios = [b["seconds"] / s["seconds"] for b, s in zip(runs["bare"], runs["steered"])]
    ratio = median(ratios)
    same = len({x["weights"] for rs in runs.values() for x in rs}) == 1
    rows = [["bare", runs["bare"][0]["steps"], f"{median([x['seconds'] for x in runs['bare']]):.3f}", "1.000", ""],
            ["steered", runs["steered"][0]["steps"], f"{median([x['seconds'] for x in runs['steered']]):.3f}",
             f"{ratio:.3f}", f">= {TARGET} {'met' if ratio >= TARGET else 'MISSED'}"]]
    print_table(["variant", "steps", "median s", "vs bare", "target"], rows,
                title=f"ddp: {args.nproc} processes, {args.rounds} rounds, ratios {', '.join(f'{x:.3f}' for x in ratios)};"
                      f" same weights: {'yes' if same else 'NO'}; {machine_line()}")
    missed = [] if ratio >= TARGET else [f"ddp steered/bare {ratio:.3f} < {TARGET}"]
    data = {"settings": {k: v for k, v in vars(args).items() if k not in ("child", "data_dir", "result")},
            "seconds": {k: [x["seconds"] for x in v] for k, v in runs.items()}, "ratios": ratios, "ratio": ratio,
            "same_weights": same, "wall_s": round(time.perf_counter() - t0, 1)}
    return finish("ddp", data, missed, args)


if __name__ == "__main__":
    sys.exit(main())
