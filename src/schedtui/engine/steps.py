"""Per-update losses kept on the device and read in batches: they become the log's `step` events.

`StepRecorder` belongs to one run core. `add(step, knobs, row, names)` keeps
update `step`'s losses — `row` is a 1-D tensor `[total, term...]` on the device,
a 0-d tensor (the total alone), or a tuple of Python floats (a framework's float
loss); `total_of(row)` reads a row's total — with the knob values
that update used and the names of its terms (None: no terms). It returns True
when a read is due (`read_every` pending, or `read_interval` seconds since the
last read). `read(epoch)` reads everything pending in one go (one host-device
sync: `# one sync per read`), emits the step events in one batch, adds the
finite totals to this epoch's losses, updates the throughput (over at least
half a second) and returns the first non-finite total as (step, value), if any.
torch only (no textual/rich).
"""

from __future__ import annotations

import math
import time

import torch

from schedtui.errors import UserError

_RATE_WINDOW_S = 0.5
_monotonic = time.monotonic


class StepRecorder:
    def __init__(self, log, read_every: int, read_interval: float, active_seconds, reduce=None):
        """`reduce(tensor)`: in place, the mean over a data-parallel job's ranks (then reads are due by count
        only, so that every rank reads at the same steps)."""
        self.log, self.read_every, self.read_interval = log, read_every, read_interval
        self.reduce = reduce
        if reduce is not None:
            self.read_interval = float("inf")
        self._active = active_seconds
        self.pending: list = []
        self.epoch_losses: list[float] = []
        self.samples = 0
        self.sps: float | None = None
        self._rate_mark = (0.0, 0)  # start of the current throughput window: (active seconds, samples)
        self._read_due = 0.0

    def start(self, active: float) -> None:
        self._rate_mark = (active, self.samples)
        self._read_due = _monotonic() + self.read_interval

    def add(self, step: int, knobs: dict, row, names) -> bool:
        self.pending.append((step, knobs, row, names))
        return len(self.pending) >= self.read_every or _monotonic() >= self._read_due

    def read(self, epoch: int) -> tuple[int, float] | None:
        if not self.pending:
            return None
        pending, self.pending = self.pending, []
        rows = _to_floats([p[2] for p in pending], self.reduce)
        active = self._active()
        self._read_due = _monotonic() + self.read_interval
        mark_t, mark_n = self._rate_mark
        dt = active - mark_t
        if dt >= _RATE_WINDOW_S or self.sps is None:  # throughput over at least half a second, not per read
            self.sps = round((self.samples - mark_n) / dt, 2) if dt > 0 else None
            self._rate_mark = (active, self.samples)
        sps, keep = self.sps, self.epoch_losses.append
        bad, items = None, []
        for (step, knobs, _, names), row in zip(pending, rows):
            loss = row[0]
            if names:
                items.append((step, {"epoch": epoch, "loss": loss, "knobs": knobs, "samples_per_s": sps,
                                     "terms": dict(zip(names, row[1:]))}))
            else:
                items.append((step, {"epoch": epoch, "loss": loss, "knobs": knobs, "samples_per_s": sps}))
            if math.isfinite(loss):
                keep(loss)
            elif bad is None:
                bad = (step, loss)
        self.log.emit_many("step", items)  # one lock and one timestamp for the batch
        return bad

    def epoch_mean(self) -> float:
        e = self.epoch_losses
        return sum(e) / len(e) if e else float("nan")


def _to_floats(rows: list, reduce=None) -> list:
    """Each row as a list of floats: device tensors read together (one sync), float tuples as they are; with
    `reduce`, every value is first the mean over the ranks (one collective for the whole read)."""
    if reduce is not None:
        return _reduced(rows, reduce)
    if all(r.__class__ is torch.Tensor for r in rows):
        try:
            out = torch.stack(rows).tolist()  # the common case: one shape  # one sync per read
        except RuntimeError:
            pass
        else:
            return [[v] for v in out] if rows[0].dim() == 0 else out  # 0-d rows: the total alone
    tensors = [r for r in rows if isinstance(r, torch.Tensor)]
    if not tensors:
        return [list(r) for r in rows]
    flat = torch.cat([t.reshape(-1) for t in tensors]).tolist()  # one sync per read (float32 and float64 promote)
    out, i = [], 0
    for r in rows:
        if isinstance(r, torch.Tensor):
            n = r.numel()
            out.append(flat[i:i + n])
            i += n
        else:
            out.append(list(r))
    return out


def _reduced(rows: list, reduce) -> list:
    dev = next((r.device for r in rows if isinstance(r, torch.Tensor)), torch.device("cpu"))
    parts = [r.reshape(-1).double() if isinstance(r, torch.Tensor) else torch.tensor(r, dtype=torch.float64, device=dev)
             for r in rows]
    flat = reduce(torch.cat(parts).to(dev)).tolist()  # one collective and one sync per read
    out, i = [], 0
    for p in parts:
        out.append(flat[i:i + p.numel()])
        i += p.numel()
    return out


def total_of(row) -> float:
    """A loss row's total as a float (a device tensor's costs a sync)."""
    return float(row) if row.__class__ is torch.Tensor and row.dim() == 0 else float(row[0])


def number(name: str, v) -> float:
    """A metric or loss term handed over by a driver, as a float (a one-element tensor costs a sync)."""
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise UserError(f"metric {name}: expected a number, got {type(v).__name__}")
    return float(v)


def loss_row(loss, terms: dict | None):
    """A step's losses as one row: a 1-D float tensor on the loss's device, or a tuple of floats."""
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            raise UserError(f"the loss must be a scalar (one value), got a tensor of shape {tuple(loss.shape)}")
        total = loss.detach().float().reshape(1)
        if not terms:
            return total
        parts = [total]
        for k, t in terms.items():
            if isinstance(t, torch.Tensor) and t.numel() == 1:
                parts.append(t.detach().float().reshape(1).to(total.device))
            else:  # a Python float keeps its precision (the row becomes float64)
                parts.append(torch.tensor([number(k, t)], dtype=torch.float64, device=total.device))
        return torch.cat(parts)
    if isinstance(loss, bool) or not isinstance(loss, (int, float)):
        raise UserError(f"the loss must be a tensor or a number, got {type(loss).__name__}")
    return (float(loss), *[number(k, t) for k, t in (terms or {}).items()])
