"""Batches from tensors that already live on the training device.

Contract: `DeviceLoader(x, y, batch_size, shuffle=, seed=, drop_last=, transform=)`
yields `(xb, yb)` on the device of `x`. The order of an epoch depends only on
`(seed, epoch)` (set with `set_epoch`), so the same seed and epoch give the same
batches, bit for bit on CPU. The optional `transform(xb, generator)` (augmentation,
normalisation) gets its own generator on the data's device, also seeded from
`(seed, epoch)`, and must not sync with the host.

Resuming mid-epoch: `iter_from(i, rng_state)` yields the epoch's batches from index
i, with the transform generator in `rng_state` — what `rng_state()` returned
while the epoch stood before batch i — so the batches are the ones an
uninterrupted epoch would have given.

Data-parallel (`shard=(rank, world_size)`): every rank holds the whole data and
takes its share of each epoch's order — the same permutation everywhere, cut to
a multiple of the world size and dealt out rank by rank, so each sample is seen
once per epoch across the ranks and every rank has as many batches; without
shuffling (validation) rank r takes samples r, r+world, ... (shares may differ
by one). The transform generator is seeded per rank.

Cost: one host-to-device copy per epoch (the permutation); no host-device sync
per batch. torch only; must not import textual/rich.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

Transform = Callable[[Tensor, torch.Generator], Tensor]

_MASK64 = (1 << 64) - 1


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A deterministic 64-bit seed for (seed, epoch); `stream` separates independent uses."""
    return ((seed * 100003 + epoch) * 2 + stream) & _MASK64


class DeviceLoader:
    """Iterate over (x, y) in mini-batches without leaving the device."""

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        transform: Transform | None = None,
        shard: tuple[int, int] = (0, 1),
    ):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
        if x.device != y.device:
            raise ValueError(f"x is on {x.device} but y is on {y.device}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.x = x
        self.y = y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.transform = transform
        self.rank, self.world = shard
        self.epoch = 0
        self._gen: torch.Generator | None = None  # the transform generator of the iteration under way

    @property
    def n_samples(self) -> int:
        """The samples this rank sees in an epoch (all of them without sharding)."""
        n, w = int(self.x.shape[0]), self.world
        if w == 1:
            return n
        return n // w if self.shuffle else len(range(self.rank, n, w))

    @property
    def device(self) -> torch.device:
        return self.x.device

    def __len__(self) -> int:
        n, bs = self.n_samples, self.batch_size
        return n // bs if self.drop_last else (n + bs - 1) // bs

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _permutation(self) -> Tensor:
        n = int(self.x.shape[0])
        gen = torch.Generator(device="cpu")
        gen.manual_seed(epoch_seed(self.seed, self.epoch, 0))
        perm = torch.randperm(n, generator=gen)
        if self.world > 1:  # this rank's share of the same permutation
            perm = perm[: n - n % self.world][self.rank::self.world]
        # Cost: one host-to-device copy per epoch, never per batch.
        return perm.to(self.device, non_blocking=False)

    def _order(self) -> Tensor | None:
        """The indices this rank iterates this epoch (None: all of them, in order)."""
        if self.shuffle:
            return self._permutation()
        if self.world > 1:
            return torch.arange(self.rank, int(self.x.shape[0]), self.world, device=self.device)
        return None

    def _transform_generator(self) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(epoch_seed(self.seed, self.epoch, 1 + 2 * self.rank))
        return gen

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.iter_from(0)

    def rng_state(self) -> Tensor | None:
        """The transform generator's state before the next batch of the current iteration (None without
        a transform, or before the first iteration)."""
        return None if self._gen is None else self._gen.get_state()

    def iter_from(self, start: int, rng_state: Tensor | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """The epoch's batches from index `start`; `rng_state` (from `rng_state()`) places the transform
        generator where it stood before batch `start`."""
        n, bs = self.n_samples, self.batch_size
        perm = self._order()
        gen = self._transform_generator() if self.transform is not None else None
        if gen is not None and start > 0:
            if rng_state is None:
                raise ValueError("iter_from: starting mid-epoch with a transform needs the generator's state")
            gen.set_state(rng_state.cpu())
        self._gen = gen
        for i in range(start, len(self)):
            lo, hi = i * bs, min((i + 1) * bs, n)
            if perm is None:
                xb, yb = self.x[lo:hi], self.y[lo:hi]  # views, no copy
            else:
                idx = perm[lo:hi]  # device-side gather, no sync
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if self.transform is not None:
                xb = self.transform(xb, gen)
            yield xb, yb

    def __repr__(self) -> str:
        return (f"DeviceLoader(n={self.n_samples}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, device={self.device})")
