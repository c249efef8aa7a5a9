"""Socket-level pieces of the control channel: peer credentials, a listening socket, a peer's buffers.

`peer_uid(sock)` says which uid is at the other end of a Unix socket (both sides
check it); `listen(path)` listens at `path`, replacing a socket nobody listens on
(what a killed process leaves behind); `Peer` is one client of the server: its
socket (non-blocking) and its input and output buffers. Pure Python, stdlib only.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path


class Peer:
    """A client of the server: its socket and buffers, its role (from its hello) and whether it streams events."""

    __slots__ = ("sock", "rbuf", "wbuf", "role", "streaming", "from_seq", "since", "closing", "writing")

    def __init__(self, sock: socket.socket):
        self.sock, self.rbuf, self.wbuf = sock, bytearray(), bytearray()
        self.role: str | None = None  # set by the hello
        self.streaming, self.from_seq = False, 0
        self.since = time.monotonic()
        self.closing = False  # close once wbuf is sent
        self.writing = False  # registered for EVENT_WRITE


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux SO_PEERCRED, macOS/BSD LOCAL_PEERCRED), or None where the OS
    cannot say (then nobody is let in)."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:  # pragma: no cover - not Linux: struct xucred {u_int cr_version; uid_t cr_uid; ...}
        local = getattr(socket, "LOCAL_PEERCRED", None)
        if local is None:
            return None
        try:
            return struct.unpack("2I", sock.getsockopt(0, local, 8))[1]  # level 0: SOL_LOCAL
        except (OSError, struct.error):
            return None
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    except OSError:
        return None
    return uid


def listen(path: Path) -> socket.socket:
    """A listening socket at `path`; a stale socket there (no one listening) is replaced."""
    if path.exists() or path.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            raise OSError(f"{path}: another process is serving this run")
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # in our private directory: a socket left by a killed process
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(16)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
