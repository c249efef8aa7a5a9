"""A factory's data as the engine's loaders: (inputs, targets) batches on the training device.

- A pair of tensors: held on the device, batched by `DeviceLoader` (the fastest path).
- A map-style dataset of (input, target) pairs: batched by torch's `DataLoader` with a
  batch sampler whose order depends only on (seed, epoch), so runs, reruns and
  resumes see the same batches; resuming mid-epoch starts the sampler at the batch,
  loading nothing it skips.
- A `DataLoader` of the user's own: used as it is (its own order); `set_epoch` is
  passed to its sampler when it has one, and resuming mid-epoch skips batches by
  loading them (exact only when the user's loader is deterministic).
Every batch is moved to the device (non-blocking from pinned memory on CUDA).
With the built-in update, batches are (input, target) pairs; with a factory's own
`train_step` (`pairs=False`) a batch may be any structure — a tuple of any length,
a dict, a dataclass, a namedtuple — and is moved to the device recursively
(`to_device`); a tuple of several equal-length tensors is a dataset of tuples.
torch only; must not import textual/rich.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from schedtui.engine.data import DataBundle
from schedtui.engine.loader import DeviceLoader, epoch_seed
from schedtui.errors import UserError


def _pair(batch, what: str):
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch
    raise UserError(f"{what}: batches must be (input, target) pairs, got {type(batch).__name__}"
                    + (f" of {len(batch)}" if isinstance(batch, (list, tuple)) else ""))


def to_device(batch, device: torch.device, non_blocking: bool = False):
    """`batch` with every tensor in it moved to `device`: tensors, lists, tuples, namedtuples, dicts, dataclasses."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        moved = {k: to_device(v, device, non_blocking) for k, v in batch.items()}
        return moved if type(batch) is dict else type(batch)(moved)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: to_device(getattr(batch, f.name), device, non_blocking)
                                             for f in dataclasses.fields(batch) if f.init})
    return batch


def batch_size_of(batch) -> int | None:
    """The number of samples in a batch: the first dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else None
    if isinstance(batch, dict):
        items = batch.values()
    elif dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        items = (getattr(batch, f.name) for f in dataclasses.fields(batch))
    elif isinstance(batch, (list, tuple)):
        items = batch
    else:
        return None
    for v in items:
        n = batch_size_of(v)
        if n is not None:
            return n
    return None


class _ToDevice:
    pairs = True  # the built-in update: (input, target) pairs

    def __init__(self, device: torch.device):
        self.device = device
        self._non_blocking = device.type == "cuda"

    def _move(self, batch, what: str):
        if not self.pairs:
            return to_device(batch, self.device, self._non_blocking)
        x, y = _pair(batch, what)
        return x.to(self.device, non_blocking=self._non_blocking), y.to(self.device, non_blocking=self._non_blocking)


class DatasetLoader(_ToDevice):
    """Batches of a map-style dataset in a (seed, epoch)-determined order."""

    def __init__(self, dataset, batch_size: int, *, shuffle: bool, seed: int, drop_last: bool, device, num_workers: int,
                 what: str, shard: tuple[int, int] = (0, 1)):
        super().__init__(device)
        self.dataset, self.batch_size, self.shuffle, self.seed, self.drop_last = dataset, batch_size, shuffle, seed, drop_last
        self.num_workers, self.what, self.epoch = num_workers, what, 0
        self.rank, self.world = shard
        n = len(dataset)  # this rank's share (see engine.loader: the same order everywhere, dealt out by rank)
        self.n = (n // self.world if shuffle else len(range(self.rank, n, self.world))) if self.world > 1 else n

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng_state(self):
        return None  # the order is a function of (seed, epoch); nothing else to keep

    def _batches(self, start: int) -> list[list[int]]:
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, 0))
            order = torch.randperm(n, generator=g).tolist()
            if self.world > 1:
                order = order[: n - n % self.world][self.rank::self.world]
        else:
            order = list(range(self.rank, n, self.world))
        bs = self.batch_size
        return [order[i * bs:(i + 1) * bs] for i in range(start, len(self))]

    def iter_from(self, start: int, rng_state=None) -> Iterator:
        # a generator of its own: starting an iteration draws the workers' base seed from it, not from the global
        # RNG, so a run resumed mid-epoch draws exactly what a straight one does
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch, 2))
        loader = DataLoader(self.dataset, batch_sampler=self._batches(start), num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda", generator=gen)
        return (self._move(b, self.what) for b in loader)

    def __iter__(self) -> Iterator:
        return self.iter_from(0)


class ForeignLoader(_ToDevice):
    """A DataLoader the factory built itself: its own order and batching."""

    def __init__(self, loader: DataLoader, device, what: str):
        super().__init__(device)
        self.loader, self.what = loader, what

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        for part in (self.loader.sampler, getattr(self.loader, "batch_sampler", None)):
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def rng_state(self):
        return None

    def iter_from(self, start: int, rng_state=None) -> Iterator:
        if start == 0:
            it = iter(self.loader)
        else:  # resuming mid-epoch: the batches before `start` are loaded and dropped without touching the global
            # RNG, which the checkpoint put where it stood after them (exact with num_workers=0; workers reseed)
            with torch.random.fork_rng(devices=[]):
                it = iter(self.loader)
                for _ in itertools.islice(it, start):
                    pass
        return (self._move(b, self.what) for b in it)

    def __iter__(self) -> Iterator:
        return self.iter_from(0)


def user_loader(data, data_cfg: dict, device: torch.device, seed: int, *, train: bool, pairs: bool = True):
    what = "train data" if train else "val data"
    bs = data_cfg["batch_size"] if train else (data_cfg.get("eval_batch_size") or 2 * data_cfg["batch_size"])
    loader = _loader(data, data_cfg, device, seed, train, pairs, what, bs)
    loader.pairs = pairs
    return loader


def _loader(data, data_cfg, device, seed, train, pairs, what, bs):
    from schedtui.engine.data import current_shard, shard_of

    shard, local = shard_of(bs) if train else (current_shard(), bs)  # validation: each rank a share, any batch size
    if isinstance(data, DataLoader):
        from torch.utils.data.distributed import DistributedSampler

        if shard[1] > 1 and not isinstance(data.sampler, DistributedSampler):
            raise UserError(f"{what}: under torchrun a DataLoader of your own needs a DistributedSampler (or give "
                            "schedtui the dataset, which it shards by rank)")
        return ForeignLoader(data, device, what)
    if not pairs and isinstance(data, (tuple, list)) and len(data) != 2 and data and \
            all(isinstance(t, torch.Tensor) for t in data):  # several tensors: one sample is a tuple of them
        if len({t.shape[0] for t in data}) != 1:
            raise UserError(f"{what}: the tensors hold different numbers of samples: {[t.shape[0] for t in data]}")
        from torch.utils.data import TensorDataset

        data = TensorDataset(*data)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise UserError(f"{what}: {x.shape[0]} inputs but {y.shape[0]} targets")
        return DeviceLoader(x.to(device), y.to(device), local, shuffle=train and data_cfg["shuffle"], seed=seed,
                            drop_last=train and data_cfg["drop_last"], shard=shard)
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (str, bytes, dict))):
        if len(data) == 0:
            raise UserError(f"{what}: the dataset is empty")
        if pairs:
            _pair(data[0], what)
        return DatasetLoader(data, local, shuffle=train and data_cfg["shuffle"], seed=seed,
                             drop_last=train and data_cfg["drop_last"], device=device, num_workers=data_cfg["num_workers"],
                             what=what, shard=shard)
    raise UserError(f"{what}: expected a map-style Dataset, a DataLoader or an (inputs, targets) pair of tensors, "
                    f"got {type(data).__name__}")


def user_data(train, val, data_cfg: dict, device: torch.device, seed: int, name: str, pairs: bool = True) -> DataBundle:
    tr = user_loader(train, data_cfg, device, seed, train=True, pairs=pairs)
    if len(tr) == 0:
        raise UserError("train data: no batches (fewer samples than data.batch_size with drop_last?)")
    va = user_loader(val, data_cfg, device, seed, train=False, pairs=pairs) if val is not None else []
    return DataBundle(train=tr, val=va, input_shape=(), n_classes=0, task="custom", name=name)
