"""A run's active time: wall time since it began, less the time it spent paused, plus the time before a resume.

`ActiveClock.start()` when training begins, `pause()` / `resume()` around a pause,
`seconds()` from any thread. `offset` is the active time a resumed run had before
its checkpoint. Pure Python.
"""

from __future__ import annotations

import time


class ActiveClock:
    def __init__(self):
        self.offset = 0.0
        self._t0 = self._pause_t0 = time.monotonic()
        self._paused_total = 0.0
        self._paused = False

    def start(self, paused: bool = False) -> None:
        self._t0 = time.monotonic()
        self._paused = paused
        if paused:
            self._pause_t0 = self._t0

    def pause(self) -> None:
        self._paused, self._pause_t0 = True, time.monotonic()

    def resume(self) -> None:
        if self._paused:
            self._paused_total += time.monotonic() - self._pause_t0
            self._paused = False

    def seconds(self) -> float:
        now = time.monotonic()
        paused = self._paused_total + (now - self._pause_t0 if self._paused else 0.0)
        return self.offset + now - self._t0 - paused
