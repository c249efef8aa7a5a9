"""What the benchmark scripts share: the machine's description, medians, a printed table, JSON results, data.

Each script in `benchmarks/` prints a table and writes its numbers to
`benchmarks/results/NAME.json` (or `--json PATH`), with `machine()` beside them
(CPU model, cores, Python, torch), because a timing means nothing without the
machine it was taken on. Ratios measured side by side are the claim; absolute
times are context. Imports only the standard library at module level (the
start-up benchmark must not pull torch in); `fake_cifar` needs numpy.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import statistics
import sys
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    """The machine a measurement ran on (no torch import: versions come from package metadata)."""
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable = cores
    return {"cpu": cpu_model(), "cores": cores, "usable_cores": usable, "platform": platform.platform(),
            "python": platform.python_version(), "torch": _version("torch"), "torchvision": _version("torchvision"),
            "textual": _version("textual"), "rich": _version("rich")}


def machine_line(m: dict | None = None) -> str:
    m = m or machine()
    return f"{m['cpu']}, {m['usable_cores']} cores, Python {m['python']}, torch {m['torch']}"


def median(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def print_table(headers: list[str], rows: list[list], title: str | None = None) -> None:
    """A plain aligned table on stdout (numbers right-aligned)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) for i in range(len(headers))]

    def fmt(row):
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric)).rstrip()

    if title:
        print(title)
    print(fmt(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(fmt(r))


def _is_number(s: str) -> bool:
    try:
        float(s.rstrip("x%s").replace(",", ""))
        return True
    except ValueError:
        return False


def finish(name: str, data: dict, missed: list[str], args) -> int:
    """The end of every benchmark: write `data` and `missed` as JSON (`args.json`), say where, name the
    missed targets on stderr; the exit status (1 when a target is missed, unless `args.no_check`)."""
    path = write_json(name, {**data, "missed": missed}, args.json)
    print(f"results: {path}")
    if missed:
        print("missed: " + "; ".join(missed), file=sys.stderr)
    return 1 if missed and not args.no_check else 0


def write_json(name: str, data: dict, path: str | Path | None = None) -> Path:
    """Write `data` (with the machine) to `path`, default benchmarks/results/NAME.json; returns the path."""
    out = Path(path) if path else RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), "argv": sys.argv[1:], **data}
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def fake_cifar(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """A CIFAR-10-python folder (`root/cifar-10-batches-py`) of random images, laid out like the real release
    (five train batches, a test batch, the meta file), for `data.verify=false`. No download."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    per = max(1, -(-n_train // 5))  # at least n_train in all

    def batch(n: int, label: str) -> dict:
        return {"batch_label": label, "labels": [int(v) for v in rng.integers(0, 10, size=n)],
                "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), "filenames": [f"{i}.png" for i in range(n)]}

    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(per, f"training batch {i} of 5"), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(n_test, "testing batch 1 of 1"), protocol=2))
    meta = {"label_names": CIFAR_LABELS, "num_cases_per_batch": per, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder
