"""Which ranks of a data-parallel job are alive: heartbeats through a small key-value store of the job's own.

`Watch(dist)` starts, on every rank, a thread that counts up `alive/<rank>` in a
`torch.distributed.TCPStore` hosted by rank 0 (its port picked by the OS and
broadcast once over the control group) every `PERIOD_S` seconds. On rank 0 it
also looks at the other ranks' counters: when one has not moved for
`STALE_S` seconds (its process died, or hangs), `on_dead(ranks)` is called once —
the run core then ends the run `crashed` with an error naming them, even while
its own training thread is stuck in a collective that will never return (NCCL
waits a long time for a peer that is gone). `dead(wait_s)` answers at once which
ranks have stopped counting, for an error message (a collective that failed
because a peer went away). Heartbeats hold no lock the training needs and cost
nothing per step. torch.distributed only; no textual/rich.
"""

from __future__ import annotations

import datetime
import os
import threading
import time

PERIOD_S = 1.0
STALE_S = 30.0


class Watch:
    def __init__(self, dist, on_dead=None, stale_s: float = STALE_S):
        from torch.distributed import TCPStore

        self.dist, self.on_dead, self.stale_s = dist, on_dead, stale_s
        host = os.environ.get("MASTER_ADDR", "127.0.0.1")
        timeout = datetime.timedelta(seconds=60)
        if dist.main:
            self.store = TCPStore(host, 0, dist.world, True, timeout=timeout, wait_for_workers=False)
            dist.broadcast(self.store.port)
        else:
            port = dist.broadcast()
            self.store = TCPStore(host, port, dist.world, False, timeout=timeout, wait_for_workers=False)
        self._seen: dict[int, tuple[int, float]] = {}  # rank -> (its count, when rank 0 saw it move)
        self._stop = threading.Event()
        self._reported = False
        self._thread = threading.Thread(target=self._run, name="schedtui-ddp-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        key = f"alive/{self.dist.rank}"
        while not self._stop.wait(PERIOD_S):
            try:
                self.store.add(key, 1)
                if self.dist.main:
                    dead = self._stale(self.stale_s)
                    if dead and not self._reported and self.on_dead is not None:
                        self._reported = True
                        self.on_dead(dead)
            except Exception:  # the store's host (rank 0) is gone: nothing to report to
                if not self.dist.main:
                    return

    def _stale(self, after_s: float) -> list[int]:
        now, dead = time.monotonic(), []
        for r in range(1, self.dist.world):
            n = self._count(r)
            count, since = self._seen.get(r, (None, now))
            if n != count:
                self._seen[r] = (n, now)
            elif now - since >= after_s:
                dead.append(r)
        return dead

    def dead(self, wait_s: float = 3.0) -> list[int]:
        """On rank 0: the ranks whose heartbeat did not move in `wait_s` seconds."""
        if not self.dist.main:
            return []
        before = {r: self._count(r) for r in range(1, self.dist.world)}
        time.sleep(wait_s)
        return [r for r in before if self._count(r) == before[r]]

    def _count(self, r: int) -> int:
        try:
            return int(self.store.add(f"alive/{r}", 0))
        except Exception:
            return -1

    def stop(self) -> None:
        """End the heartbeat (the store stays for `dead`)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)  # a store call in flight ends within its timeout or with rank 0

    def close(self) -> None:
        """`stop`, and let go of the store now rather than at interpreter exit, where a store that outlived
        its thread could abort the process ("terminate called without an active exception")."""
        self.stop()
        self.store = None
