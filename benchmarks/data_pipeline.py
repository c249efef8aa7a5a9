"""Training data per second: schedtui's device-resident CIFAR pipeline against torchvision's DataLoader.

    .venv/bin/python benchmarks/data_pipeline.py                  # 10,000 images, batch 512, 5 rounds
    .venv/bin/python benchmarks/data_pipeline.py --images 2000 --rounds 3 --workers 0,2

Both produce the same thing: shuffled batches of normalised float32 images
[B, 3, 32, 32] with a random translate by up to 4 pixels (zero padding) and a random
horizontal flip, with their labels.

- `schedtui`: the split held as one uint8 tensor on the device (here the CPU),
  batches gathered by index and augmented as a whole batch with tensor ops
  (`engine.loader.DeviceLoader` + `engine.cifar.cifar_augment`), torch's default
  intra-op threads;
- `torchvision, N workers`: `torchvision.datasets.CIFAR10` with per-sample
  transforms (`RandomCrop(32, padding=4)`, `RandomHorizontalFlip`, `ToTensor`,
  `Normalize`) in a `DataLoader(num_workers=N, persistent_workers=True)`.

The images are random pixels written in CIFAR's own format (no download). Each round
times one epoch of each pipeline after a warm-up epoch, interleaved; the table gives
the median samples/s and the speed-up of schedtui over each. Exits 1 when schedtui is
not at least `--min-speedup` times the fastest torchvision setting (unless `--no-check`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fake_cifar, finish, machine_line, median, print_table  # noqa: E402


def schedtui_pipeline(data_dir: Path, batch: int):
    from schedtui.engine.cifar import cifar_augment, load_cifar10
    from schedtui.engine.loader import DeviceLoader

    x, y, _, _ = load_cifar10(data_dir, "cpu", download=False, verify=False)
    loader = DeviceLoader(x, y, batch, shuffle=True, seed=0, drop_last=True, transform=cifar_augment(4, True))
    epoch = [0]

    def one_epoch() -> int:
        loader.set_epoch(epoch[0])
        epoch[0] += 1
        n = 0
        for xb, yb in loader:
            n += yb.shape[0]
        return n

    return one_epoch


def torchvision_pipeline(data_dir: Path, batch: int, workers: int):
    import torch
    from torchvision import transforms as T

    from schedtui.engine.cifar import MEAN, STD, _UnverifiedCIFAR10

    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    ds = _UnverifiedCIFAR10(root=str(data_dir), train=True, download=False, transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)

    def one_epoch() -> int:
        n = 0
        for xb, yb in loader:
            n += yb.shape[0]
        return n

    return one_epoch


def measure(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="schedtui-data-") as tmp:
        data_dir = Path(tmp)
        fake_cifar(data_dir, args.images, 10)
        pipes = {"schedtui": schedtui_pipeline(data_dir, args.batch)}
        for w in args.workers:
            pipes[f"torchvision, {w} workers"] = torchvision_pipeline(data_dir, args.batch, w)
        for run in pipes.values():  # warm-up: worker start, first allocations
            run()
        rates: dict = {name: [] for name in pipes}
        for _ in range(args.rounds):
            for name, run in pipes.items():
                t0 = time.perf_counter()
                n = run()
                rates[name].append(n / (time.perf_counter() - t0))
        del pipes  # stop the workers while the directory still exists
    best_tv = max((median(v) for k, v in rates.items() if k != "schedtui"), default=float("nan"))
    return {"images": args.images, "batch_size": args.batch, "rounds": args.rounds,
            "samples_per_s": rates, "median_samples_per_s": {k: median(v) for k, v in rates.items()},
            "speedup": {k: median(rates["schedtui"]) / median(v) for k, v in rates.items() if k != "schedtui"},
            "speedup_vs_best": median(rates["schedtui"]) / best_tv}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=10_000, help="training images (random, CIFAR format)")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", default="0,2", help="comma-separated DataLoader num_workers settings")
    ap.add_argument("--min-speedup", type=float, default=3.0)
    ap.add_argument("--json", help="default benchmarks/results/data_pipeline.json")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",") if w != ""]
    r = measure(args)
    med = r["median_samples_per_s"]
    rows = [[name, f"{med[name]:,.0f}", "1.00x" if name == "schedtui" else f"{r['speedup'][name]:.2f}x"] for name in med]
    print_table(["pipeline", "samples/s", "schedtui is"], rows,
                title=f"data: {args.images:,} images, batch {args.batch}, median of {args.rounds}; {machine_line()}")
    missed = [] if r["speedup_vs_best"] >= args.min_speedup else [
        f"schedtui is {r['speedup_vs_best']:.2f}x the fastest torchvision setting (< {args.min_speedup}x)"]
    return finish("data_pipeline", r, missed, args)


if __name__ == "__main__":
    sys.exit(main())
