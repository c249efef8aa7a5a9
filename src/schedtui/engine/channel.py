"""Command channels: how commands reach a run's step boundary, and the in-process one.

A command is a name, its arguments, who sent it (`by`: "ui", "attach", "ctl", ...;
None for a program calling `send`) and a `concurrent.futures.Future` that gets the
event the command produced, or a one-line `UserError`. A channel decides *what*
applies at a step boundary; the run core (`engine.core.RunCore`) applies it there
and never knows which channel it has. A channel has:

- `send(command, /, by=None, **args) -> Future`: any thread; never blocks.
- `due(step) -> bool`: on the training thread at every boundary, so it must be
  cheap: whether `take` may have anything now.
- `take(step, wait) -> list[Command]`: the commands that apply at this boundary,
  in order. `wait=True` (the run is paused) blocks until at least one arrives
  (or the channel closes).
- `close(reason)`: answers everything still queued, and everything sent later,
  with `UserError(reason)`.

`CommandQueue` is the channel of a single process: commands apply at the next
boundary in the order they were sent (the screen in the same process, the
control socket's server thread). A DDP run's channel (rank 0 decides, a
broadcast at a fixed step cadence carries it to every rank) has the same shape.
Pure Python, stdlib only.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

from schedtui.errors import UserError


@dataclass
class Command:
    name: str
    args: dict
    future: Future
    by: str | None = None

    def answer(self, result=None, error: BaseException | None = None) -> None:
        """Settle the future; one whose sender gave up waiting (cancelled it) is left alone."""
        try:
            if error is None:
                self.future.set_result(result)
            else:
                self.future.set_exception(error)
        except InvalidStateError:
            pass


class CommandQueue:
    """The in-process channel: first sent, first applied, at the next step boundary."""

    def __init__(self, ops: tuple[str, ...]):
        self.ops = ops
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._closed: str | None = None
        self._lock = threading.Lock()

    def send(self, command: str, /, by: str | None = None, **args) -> Future:
        fut: Future = Future()
        if command not in self.ops:
            fut.set_exception(UserError(f"unknown command {command!r}; valid: {', '.join(self.ops)}"))
            return fut
        with self._lock:
            if self._closed is not None:
                fut.set_exception(UserError(self._closed))
            else:
                self._q.put(Command(command, args, fut, by))
        return fut

    def due(self, step: int) -> bool:
        return not self._q.empty()

    def take(self, step: int, wait: bool = False, timeout: float | None = None) -> list[Command]:
        """What was sent, in order; `wait`: block until something is (at most `timeout` seconds)."""
        out = []
        if wait:
            try:
                out.append(self._q.get(timeout=timeout))
            except queue.Empty:
                return []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return [c for c in out if c is not None]

    def wake(self) -> None:
        """Unblock a `take(wait=True)` without a command (the run is to stop for a reason of its own)."""
        self._q.put(None)

    def close(self, reason: str) -> None:
        with self._lock:
            self._closed = reason
        for c in self.take(0):
            c.answer(error=UserError(reason))
