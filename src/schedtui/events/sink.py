"""Bytes to an append-only file, written whole or kept for the next attempt: a full disk loses nothing.

`Sink(fd)` owns a file descriptor opened for appending. `add(data)` queues bytes;
`drain()` writes what is queued with `os.write` (no buffer of Python's in
between, so "written" means handed to the OS) until nothing is left, or until a
write fails (ENOSPC, EFBIG, EIO...): then the bytes not yet written stay queued,
`failed` says why (one short line), and the next `drain()` goes on from the
first byte that did not reach the file — a line cut by a full disk is completed,
never repeated or lost. `failed` is None again once a drain has written
everything. `sync()` asks the OS to put the file on the disk (fsync). Pure
Python, stdlib only.
"""

from __future__ import annotations

import os


class Sink:
    def __init__(self, fd: int):
        self.fd = fd
        self.pending = bytearray()
        self.failed: str | None = None

    def add(self, data: bytes) -> None:
        self.pending += data

    def drain(self) -> bool:
        """Write everything queued; False (and `failed` set) when the file takes no more for now."""
        while self.pending:
            try:
                n = os.write(self.fd, self.pending)
            except InterruptedError:
                continue
            except OSError as e:
                self.failed = e.strerror or type(e).__name__
                return False
            del self.pending[:n]
        self.failed = None
        return True

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)
