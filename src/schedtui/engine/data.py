"""Build the train/validation loaders for a preset's `[data]` table.

Contract: `build_data(cfg, device, seed, data_dir)` returns a `DataBundle` whose
loaders yield batches already on `device`; the whole data set is moved there once.
`cfg` is the validated `[data]` table; defaults are applied here with `cfg.get`.
Kinds: "moons" (generated in torch, binary) and "cifar10" (torchvision,
multiclass). Anything unusable (unknown kind, missing data, a subset too small
for one batch) raises a one-line UserError. torch only; must not import textual/rich.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from schedtui.engine.loader import DeviceLoader
from schedtui.engine.moons import make_moons
from schedtui.errors import UserError

KINDS = ("moons", "cifar10")


@dataclass
class DataBundle:
    train: DeviceLoader
    val: DeviceLoader
    input_shape: tuple
    n_classes: int  # 1 for a binary task (one logit)
    task: str  # "binary" | "multiclass"
    name: str


def _eval_batch_size(cfg: dict, batch_size: int) -> int:
    return int(cfg.get("eval_batch_size") or 2 * batch_size)


def current_shard() -> tuple[int, int]:
    """(rank, world size) of this process in a data-parallel job; (0, 1) outside one."""
    from schedtui.engine import ddp

    d = ddp.current()
    return (0, 1) if d is None else (d.rank, d.world)


def shard_of(batch_size: int, what: str = "data.batch_size") -> tuple[tuple[int, int], int]:
    """((rank, world size), this rank's batch size): a data-parallel job splits each batch between its ranks."""
    from schedtui.engine import ddp

    d = ddp.current()
    if d is None:
        return (0, 1), batch_size
    if batch_size % d.world:
        raise UserError(f"{what}: {batch_size} is not divisible by the {d.world} processes (each takes an equal share "
                        "of every batch)")
    return (d.rank, d.world), batch_size // d.world


def _moons(cfg: dict, device: torch.device, seed: int) -> DataBundle:
    n = int(cfg.get("n_samples", 1000))
    frac = float(cfg.get("val_fraction", 0.2))
    bs = int(cfg.get("batch_size", 32))
    x, y = make_moons(n, float(cfg.get("noise", 0.2)), seed)
    n_val = max(1, round(n * frac))
    n_train = n - n_val
    if not 0.0 < frac < 1.0 or n_train < 1:
        raise UserError(f"data.val_fraction: {frac} leaves no training points out of n_samples={n}")
    x, y = x.to(device), y.to(device)  # Cost: one host-to-device copy, at build time
    shard, local = shard_of(bs)
    train = DeviceLoader(x[:n_train], y[:n_train], local, shuffle=True, seed=seed, drop_last=False, shard=shard)
    val = DeviceLoader(x[n_train:], y[n_train:], _eval_batch_size(cfg, bs), shuffle=False, seed=seed,
                       drop_last=False, shard=shard)  # each rank evaluates its share; the sums are all-reduced
    return DataBundle(train, val, input_shape=(2,), n_classes=1, task="binary", name="moons")


def _subset(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if not n or n >= x.shape[0]:
        return x, y
    return x[:n].clone(), y[:n].clone()  # clone so the full split can be freed


def _cifar10(cfg: dict, device: torch.device, seed: int, data_dir: str | Path) -> DataBundle:
    # torchvision costs ~1.3 s to import: only runs that use CIFAR-10 pay for it
    from schedtui.engine.cifar import cifar_augment, cifar_normalize, load_cifar10

    bs = int(cfg.get("batch_size", 512))
    train_x, train_y, test_x, test_y = load_cifar10(
        data_dir, device, download=bool(cfg.get("download", True)), verify=bool(cfg.get("verify", True)))
    train_x, train_y = _subset(train_x, train_y, cfg.get("train_subset"))
    test_x, test_y = _subset(test_x, test_y, cfg.get("val_subset"))
    augment = cifar_augment(int(cfg.get("crop_padding", 4)), bool(cfg.get("flip", True)))
    shard, local = shard_of(bs)
    train = DeviceLoader(train_x, train_y, local, shuffle=True, seed=seed, drop_last=True, transform=augment, shard=shard)
    if len(train) == 0:
        raise UserError(f"data.batch_size: {bs} is larger than the {train.n_samples} training images "
                        f"(the last partial batch is dropped, so no batch is left); lower it or data.train_subset")
    if test_x.shape[0] == 0:
        raise UserError(f"CIFAR-10 in {data_dir} has no test images; data.val_subset needs at least 1")
    val = DeviceLoader(test_x, test_y, _eval_batch_size(cfg, bs), shuffle=False, seed=seed, drop_last=False,
                       transform=cifar_normalize, shard=shard)
    return DataBundle(train, val, input_shape=tuple(train_x.shape[1:]), n_classes=10, task="multiclass",
                      name="cifar10")


def build_data(cfg: dict, device: torch.device, seed: int, data_dir: str | Path) -> DataBundle:
    kind = cfg.get("kind", "moons")
    if kind == "moons":
        return _moons(cfg, device, seed)
    if kind == "cifar10":
        return _cifar10(cfg, device, seed, data_dir)
    raise UserError(f"data.kind: {kind!r} is not one of {', '.join(KINDS)}")
