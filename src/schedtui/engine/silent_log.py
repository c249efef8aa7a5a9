"""The event log of a data-parallel rank other than 0: it has the run's header and writes nothing.

Rank 0 alone writes `events.jsonl`; the other ranks run the same run core, which
emits the same events, into this: `emit` and `emit_many` number and return them
as the real log would (so nothing downstream changes) and keep nothing;
`subscribe` gives a queue that never fills. Pure Python; no torch, textual or rich.
"""

from __future__ import annotations

import queue
import time


class SilentLog:
    def __init__(self, header: dict, path=None):
        self.header, self.path = header, path
        self.repaired = None
        self._seq = 0
        self._t0 = time.monotonic()
        self.closed = False
        self.failed = None  # never: it writes nothing

    def retry(self):
        return None

    def emit(self, type: str, step: int, **fields) -> dict:
        self._seq += 1
        return {"seq": self._seq, "type": type, "step": step, "time": round(time.monotonic() - self._t0, 6), **fields}

    def emit_many(self, type: str, items: list) -> list[dict]:
        self._seq += len(items)  # the step events: nothing reads them here
        return []

    def subscribe(self, lines: bool = False) -> queue.SimpleQueue:
        return queue.SimpleQueue()

    def unsubscribe(self, q) -> None:
        return None

    @property
    def finished(self) -> bool:
        return self.closed

    def flush(self, wait: bool = True, sync: bool = False) -> None:
        return None

    def close(self) -> None:
        self.closed = True
