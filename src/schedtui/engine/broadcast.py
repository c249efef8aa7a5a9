"""The command channel of a data-parallel run: rank 0 decides, a broadcast at a fixed step cadence tells every rank.

`BroadcastChannel(dist, cadence)` has the shape of every channel
(`engine.channel`). On rank 0 it wraps the in-process `CommandQueue` that the
screen, the control socket and signal handlers send to; the other ranks accept
no commands of their own. `due(step)` is true every `cadence` updates — a step
count, never a clock, so every rank reaches the same boundaries — and there
`take` broadcasts, over the gloo control group, the commands rank 0 took from
its queue that change the run (everything but the read-only `preview` and
`describe`, which rank 0 answers alone), so every rank applies the same commands
at the same step. While the run is paused every rank waits in `take(wait=True)`:
rank 0 for a command, the others in the broadcast, which rank 0 sends at least
every `heartbeat_s` seconds (empty when nothing came), so a pause of any length
never trips a collective's timeout. torch.distributed only; no textual/rich.
"""

from __future__ import annotations

from concurrent.futures import Future

from schedtui.engine.channel import Command, CommandQueue
from schedtui.errors import UserError

READ_ONLY = ("preview", "describe")
HEARTBEAT_S = 5.0


class BroadcastChannel:
    def __init__(self, dist, ops: tuple[str, ...], cadence: int, heartbeat_s: float = HEARTBEAT_S):
        self.dist, self.cadence, self.heartbeat_s = dist, max(1, int(cadence)), heartbeat_s
        self.queue = CommandQueue(ops) if dist.main else None
        self._closed: str | None = None

    def send(self, command: str, /, by: str | None = None, **args) -> Future:
        if self.queue is not None:
            return self.queue.send(command, by=by, **args)
        fut: Future = Future()
        fut.set_exception(UserError(f"rank {self.dist.rank} takes no commands: send them to rank 0 (schedtui ctl/attach)"))
        return fut

    def due(self, step: int) -> bool:
        return step % self.cadence == 0

    def take(self, step: int, wait: bool = False, timeout: float | None = None) -> list[Command]:
        mine = self._collect(wait) if self.queue is not None else []
        shared = [(c.name, c.args, c.by) for c in mine if c.name not in READ_ONLY]
        shared = self.dist.broadcast(shared)
        if self.queue is not None:
            return mine  # rank 0 applies what it took (and answers the futures)
        out = []
        for name, args, by in shared:
            fut: Future = Future()
            out.append(Command(name, dict(args), fut, by))
        return out

    def _collect(self, wait: bool) -> list[Command]:
        # waiting (paused): at most heartbeat_s, then an empty broadcast tells the others the pause goes on
        return self.queue.take(0, wait, timeout=self.heartbeat_s if wait else None)

    def wake(self) -> None:
        if self.queue is not None:
            self.queue.wake()

    def close(self, reason: str) -> None:
        if self.queue is not None:
            self.queue.close(reason)
