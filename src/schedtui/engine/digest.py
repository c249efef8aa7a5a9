"""A short fingerprint of a model's parameters, to tell whether data-parallel ranks still agree.

`parameter_digest(model)` hashes every parameter's bytes (not the buffers: BatchNorm's running
statistics follow each rank's own batches between DDP's broadcasts) (moved to the
CPU once: one host-device copy per call, at an epoch's end) into a hex string;
two ranks with bit-identical weights give the same digest. torch only.
"""

from __future__ import annotations

import hashlib

import torch


def parameter_digest(model: torch.nn.Module) -> str:
    h = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, t in model.named_parameters():
            h.update(name.encode())
            h.update(t.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
