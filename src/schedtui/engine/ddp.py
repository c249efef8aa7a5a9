"""Data-parallel training under torchrun: the process group, this rank's place in it, and the collectives schedtui uses.

`setup()` (once per process, before a run is built) reads torchrun's environment
(`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`); with a world of
one it does nothing and `current()` stays None. Otherwise it joins the job's
process group — NCCL on CUDA, gloo on the CPU (`--device`), one device per local
rank — and a second, gloo-only group for control (commands, heartbeats, digests,
random states), so that a pause of any length never leaves an NCCL collective
waiting. `current()` then returns the `Dist` every part of a run asks:

- `rank`, `world`, `main` (rank 0: it alone writes the log, the checkpoints and
  owns the control socket), `backend`, `device`;
- `mean_(tensor)`: all-reduce a device tensor to its mean over the ranks, in place
  (the batched loss reads: one collective per read, never per step);
- `sum_(tensor)`: all-reduce a sum (evaluation's totals);
- `broadcast(obj)`: rank 0's object to every rank, over the control group;
- `gather(obj)`: every rank's object, on every rank, over the control group.

Anything wrong with the job (NCCL without CUDA, a rank's device missing) is a
one-line UserError. torch only; no textual/rich.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch

from schedtui.errors import UserError

_CURRENT: "Dist | None" = None
CONTROL_TIMEOUT_S = 600  # the control group's collectives; a pause sends heartbeats far more often than this


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    backend: str
    device: torch.device
    control: object  # the gloo process group for commands and heartbeats

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean_(self, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.div_(self.world)

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def broadcast(self, obj=None):
        import torch.distributed as dist

        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def gather(self, obj) -> list:
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj, group=self.control)
        return out


def in_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def current() -> Dist | None:
    return _CURRENT


def setup(device_name: str) -> Dist | None:
    """Join torchrun's job (see the module docstring); None outside one."""
    global _CURRENT
    if _CURRENT is not None or not in_torchrun():
        return _CURRENT
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if dist.is_initialized():  # the user's script joined the job itself (its own loop under schedtui.monitor)
        backend = dist.get_backend()
        device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        control = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=CONTROL_TIMEOUT_S))
        _CURRENT = Dist(dist.get_rank(), dist.get_world_size(), local, backend, device, control)
        return _CURRENT
    cuda = device_name in ("cuda", "auto") and torch.cuda.is_available()
    if device_name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda under torchrun: no CUDA device here (NCCL needs CUDA; --device cpu uses gloo)")
    if cuda:
        if local >= torch.cuda.device_count():
            raise UserError(f"rank {rank}: LOCAL_RANK {local} but this node has {torch.cuda.device_count()} GPUs")
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world, device_id=device if cuda else None)
    control = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=CONTROL_TIMEOUT_S))
    _CURRENT = Dist(rank, world, local, backend, device, control)
    return _CURRENT


def teardown() -> None:
    global _CURRENT
    if _CURRENT is None:
        return
    import torch.distributed as dist

    try:
        dist.destroy_process_group()
    finally:
        _CURRENT = None
