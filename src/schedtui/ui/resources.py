"""What the run's process uses: its CPU and memory always, the GPU's utilisation and memory on CUDA.

`Resources(device).sample()` is called by the screen at its own rate, on the UI
thread (never the training thread) and returns one short line, e.g.
`cpu 97% · mem 612 MB · gpu0 43% 3.1/80 GB`, or None when nothing can be read.
CPU and memory come from psutil (the process's CPU time since the last sample,
as a share of one core, and its resident memory); the GPU from NVIDIA's
management library through its Python package (`pynvml`, from nvidia-ml-py),
only when the run's device is CUDA. Without a GPU, a driver or either package,
that part is left out, quietly: nothing is printed, nothing raises. Samples are
taken at most every `PERIOD_S` (a CPU share over a shorter time is noise).
No torch, no textual.
"""

from __future__ import annotations

import os
import time

PERIOD_S = 1.0


class Resources:
    def __init__(self, device: str | None, pid: int | None = None):
        self.device = device or ""
        self.pid = pid or os.getpid()
        self._proc = None
        self._gpu = None  # an NVML device handle
        self._gpu_name = ""
        self._tried = False
        self._at = 0.0
        self._line: str | None = None
        self._primed = False

    def _open(self) -> None:
        self._tried = True
        try:
            import psutil

            self._proc = psutil.Process(self.pid)
            self._proc.cpu_percent(None)  # the first call starts the count
        except Exception:  # no psutil, or the process is gone: no CPU/memory part
            self._proc = None
        if self.device.startswith("cuda"):
            self._open_gpu()

    def _open_gpu(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            index = int(self.device.partition(":")[2] or 0)
            visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
            if visible and index < len(visible):  # cuda:N is the Nth visible device, by index or UUID
                v = visible[index]
                self._gpu = pynvml.nvmlDeviceGetHandleByIndex(int(v)) if v.isdigit() else pynvml.nvmlDeviceGetHandleByUUID(v)
            else:
                self._gpu = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._gpu_name = f"gpu{index}"
        except Exception:  # no package, no driver, no such device: no GPU part
            self._gpu = None

    def sample(self) -> str | None:
        now = time.monotonic()
        if self._tried and now - self._at < PERIOD_S:
            return self._line
        if not self._tried:
            self._open()
        self._at = now
        parts = []
        if self._proc is not None:
            try:
                with self._proc.oneshot():
                    cpu, rss = self._proc.cpu_percent(None), self._proc.memory_info().rss
                if self._primed:  # the first share counts from a moment ago: noise
                    parts.append(f"cpu {cpu:.0f}%")
                self._primed = True
                parts.append(f"mem {_bytes(rss)}")
            except Exception:
                self._proc = None
        if self._gpu is not None:
            try:
                import pynvml

                util = pynvml.nvmlDeviceGetUtilizationRates(self._gpu).gpu
                mem = pynvml.nvmlDeviceGetMemoryInfo(self._gpu)
                parts.append(f"{self._gpu_name} {util}% {mem.used / 2**30:.1f}/{mem.total / 2**30:.0f} GB")
            except Exception:
                self._gpu = None
        self._line = " · ".join(parts) or None
        return self._line


def _bytes(n: float) -> str:
    return f"{n / 2**20:.0f} MB" if n < 2**30 * 10 else f"{n / 2**30:.1f} GB"
