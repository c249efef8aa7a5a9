"""A tiny, genuine CIFAR-10-python-format folder for tests (no download).

`make_fake_cifar(root)` writes `root/cifar-10-batches-py/` with data_batch_1..5,
test_batch and batches.meta, laid out like the real release: each batch a pickled
dict with "data" (uint8 [N, 3072], channel-planar: 1024 R, 1024 G, 1024 B, rows
top to bottom) and "labels" (list of int). Keys are str, not bytes: the real files
were pickled by Python 2 and torchvision reads them with encoding="latin1", which
turns their keys into str, so torchvision looks up entry["data"] and
meta["label_names"]. The md5s differ from the real release, so only
`verify=False` loads it. Images are random; `read_fake_cifar` returns what was written.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]


def _batch(rng: np.random.Generator, n: int, label: str) -> dict:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    return {"batch_label": label, "labels": labels, "data": data,
            "filenames": [f"img_{i}.png" for i in range(n)]}


def make_fake_cifar(root: Path, n_train_per_batch: int = 20, n_test: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(TRAIN_FILES, start=1):
        entry = _batch(rng, n_train_per_batch, f"training batch {i} of 5")
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(_batch(rng, n_test, "testing batch 1 of 1"), protocol=2))
    meta = {"label_names": LABEL_NAMES, "num_cases_per_batch": n_train_per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def read_fake_cifar(folder: Path) -> tuple[np.ndarray, list[int], np.ndarray, list[int]]:
    """(train NCHW uint8, train labels, test NCHW uint8, test labels) straight from the pickles."""
    def load(name):
        with open(Path(folder) / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        return entry["data"].reshape(-1, 3, 32, 32), list(entry["labels"])

    parts = [load(name) for name in TRAIN_FILES]
    test_x, test_y = load("test_batch")
    train_x = np.concatenate([x for x, _ in parts])
    train_y = [label for _, ys in parts for label in ys]
    return train_x, train_y, test_x, test_y
