"""CIFAR-10 through torchvision, held as one uint8 tensor on the training device.

Contract:
- `load_cifar10(data_dir, device, download=, verify=)` returns
  `(train_x uint8 [N,3,32,32], train_y int64 [N], test_x, test_y)` on `device`,
  read by torchvision's own CIFAR10 code (pickle batches + meta). `verify=False`
  only checks that the files exist (no md5), so a CIFAR-format subset loads.
  Missing, undownloadable or corrupted data raises a one-line UserError saying
  where it looked and what to do.
- `cifar_augment(crop_padding, flip)` returns a `transform(x_uint8, generator)`
  that does random translate (zero padding) + horizontal flip per sample on the
  whole batch with tensor ops on the device, then normalises to float32.
- `cifar_normalize(x_uint8)` is the evaluation transform (no augmentation).

Cost: loading copies each split host-to-device once; the transforms never sync
with the host (random numbers come from a generator on the data's device).
torch/torchvision only; must not import textual/rich.
"""

from __future__ import annotations

import contextlib
import functools
import io
import pickle
import urllib.error
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity

from schedtui.errors import UserError

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
_FOLDER = CIFAR10.base_folder  # "cifar-10-batches-py"
_FILES = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]


class _UnverifiedCIFAR10(CIFAR10):
    """torchvision's CIFAR10 that only checks that the files exist (no md5), for subsets."""

    meta = {**CIFAR10.meta, "md5": None}  # check_integrity(path, None) = the file exists

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)


def _missing(root: Path) -> list[str]:
    return [name for name in _FILES if not (root / _FOLDER / name).is_file()]


def _corrupted(root: Path) -> list[str]:
    """Names of the files whose md5 differs from the official release (only called on failure)."""
    pairs = CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    return [name for name, md5 in pairs if not check_integrity(str(root / _FOLDER / name), md5)]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
        text = str(exc) or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


@contextlib.contextmanager
def _quiet():
    """Silence torchvision's download prints and tqdm progress bar."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def _download(root: Path, cls: type[CIFAR10]) -> None:
    hint = f"put the extracted {_FOLDER}/ folder there, or pass --data-dir DIR"
    try:
        with _quiet():
            cls(root=str(root), train=False, download=True)
    except (urllib.error.URLError, OSError, RuntimeError, EOFError, ValueError) as exc:
        raise UserError(
            f"CIFAR-10 not found in {root} and could not be downloaded ({_reason(exc)}): {hint}"
        ) from None
    if missing := _missing(root):
        raise UserError(f"CIFAR-10 download into {root} is incomplete (missing {', '.join(missing)}): {hint}")


def _to_device(ds: CIFAR10, device: torch.device) -> tuple[Tensor, Tensor]:
    # ds.data is an NHWC view of NCHW-contiguous memory: permuting back is free.
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    return x.to(device), y.to(device)  # Cost: one host-to-device copy per split, at load time


def load_cifar10(
    data_dir: str | Path, device: torch.device | str, *, download: bool = True, verify: bool = True
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    root = Path(data_dir).expanduser()
    device = torch.device(device)
    checked = CIFAR10 if verify else _UnverifiedCIFAR10
    missing = _missing(root)
    if missing:
        if not download:
            what = "not found" if len(missing) == len(_FILES) else f"incomplete (missing {', '.join(missing)})"
            raise UserError(
                f"CIFAR-10 {what} in {root} and download is off (data.download=false): "
                f"put the extracted {_FOLDER}/ folder there, or pass --data-dir DIR"
            )
        _download(root, checked)
    try:
        train = checked(root=str(root), train=True, download=False)
        # The train constructor already checked every file (md5 too when verify): skip a second pass.
        test = _UnverifiedCIFAR10(root=str(root), train=False, download=False)
    except RuntimeError as exc:
        if not verify:
            raise UserError(f"could not read CIFAR-10 in {root}: {_reason(exc)}") from None
        bad = ", ".join(_corrupted(root)) or "unknown file"
        raise UserError(
            f"CIFAR-10 in {root / _FOLDER} is corrupted (md5 mismatch: {bad}): delete the folder to "
            f"re-download it, or for a CIFAR-format subset pass --set data.verify=false"
        ) from None
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, OSError) as exc:
        raise UserError(f"could not read CIFAR-10 in {root / _FOLDER} ({_reason(exc)})") from None
    return (*_to_device(train, device), *_to_device(test, device))


@functools.lru_cache(maxsize=8)
def _affine(device: torch.device) -> tuple[Tensor, Tensor]:
    """Per-channel scale and shift on `device` (built once per device, not per batch)."""
    std = torch.tensor(STD, dtype=torch.float32)
    mean = torch.tensor(MEAN, dtype=torch.float32)
    scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1)
    shift = (-mean / std).view(1, 3, 1, 1)
    return scale.to(device), shift.to(device)


def cifar_normalize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """uint8 [B,3,H,W] -> float32 normalised with the CIFAR-10 mean/std.

    `generator` is accepted (and ignored) so this fits the DeviceLoader transform signature.
    """
    scale, shift = _affine(x.device)
    return x.to(torch.float32).mul_(scale).add_(shift)


def cifar_augment(crop_padding: int = 4, flip: bool = True) -> Callable[[Tensor, torch.Generator], Tensor]:
    """A batch transform: random translate (zero padding) and horizontal flip, then normalise."""
    if crop_padding < 0:
        raise UserError(f"data.crop_padding: must be >= 0, got {crop_padding}")
    p = int(crop_padding)

    def transform(x: Tensor, generator: torch.Generator) -> Tensor:
        if p == 0 and not flip:
            return cifar_normalize(x)
        b, c, h, w = x.shape
        dev = x.device
        rows = torch.arange(h, device=dev).expand(b, h)
        cols = torch.arange(w, device=dev).expand(b, w)
        if p > 0:
            x = F.pad(x, (p, p, p, p))  # zeros = black border, as torchvision's RandomCrop(padding=p)
            dy = torch.randint(0, 2 * p + 1, (b, 1), generator=generator, device=dev)
            dx = torch.randint(0, 2 * p + 1, (b, 1), generator=generator, device=dev)
            rows, cols = rows + dy, cols + dx
        if flip:
            flipped = torch.rand(b, 1, generator=generator, device=dev) < 0.5
            cols = torch.where(flipped, cols.flip(1), cols)  # a flip is a reversed column index
        bi = torch.arange(b, device=dev).view(b, 1, 1, 1)
        ci = torch.arange(c, device=dev).view(1, c, 1, 1)
        out = x[bi, ci, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]  # one gather, on the device
        return cifar_normalize(out)

    return transform
