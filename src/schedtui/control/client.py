"""A client connection to a run's control socket (ctl, ps, attach): blocking, with the trust checks.

`Connection(path, role)` connects, checks that the server runs as this uid
(SO_PEERCRED), says hello and checks the answer (a version or uid refusal is the
server's one line, raised as `UserError`). `request(op, **fields)` sends one
request and waits for its reply: the result, or `Refused` (a `UserError` with exit
status 1: the run said no, nothing changed). `read()` returns the next message or
event (None when the server closed the connection); `send(msg)` writes one line
(thread-safe, for a reader on another thread). A socket nobody listens on raises
`Stale`. Pure Python, stdlib only.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading

from schedtui.control import protocol
from schedtui.control.sockets import peer_uid
from schedtui.errors import UserError

MAX_LINE = 64 << 20  # one message from the server (a describe or preview answer is far smaller)


class Refused(UserError):
    """The run refused a command (one line); nothing changed."""

    exit_code = 1


class Stale(Exception):
    """Nobody listens on the socket: the process that made it is gone."""


class Lost(UserError):
    """The connection closed before the answer came (the run ended, or its process died)."""


class Connection:
    def __init__(self, path, role: str, timeout: float | None = 5.0):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except (ConnectionRefusedError, FileNotFoundError):
            self.sock.close()
            raise Stale(self.path) from None
        except PermissionError:
            self.sock.close()
            raise UserError(f"{self.path}: permission denied (the run belongs to another user)") from None
        except OSError as e:
            self.sock.close()
            raise UserError(f"{self.path}: cannot connect ({e.strerror or e})") from None
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        try:
            uid = peer_uid(self.sock)
            if uid is not None and uid != os.geteuid():
                raise UserError(f"{self.path}: served by uid {uid}, not by this user; not using it")
            try:
                self.send(protocol.hello(role))
            except Lost:  # refused before the hello (another uid, too many clients): its one line is there to read
                pass
            reply = self.read()
            if reply is None:  # closed without a word: its process is going away (a SIGKILL's last threads)
                raise Stale(self.path)
            if "error" in reply:
                raise UserError(str(reply["error"]))
            if reply.get("hello") != protocol.NAME or reply.get("version") != protocol.VERSION:
                raise UserError(f"{self.path}: the run answered with control protocol version {reply.get('version')!r}, "
                                f"this schedtui speaks {protocol.VERSION}")
        except socket.timeout:
            self.sock.close()
            raise UserError(f"{self.path}: the run did not answer") from None
        except BaseException:
            self.sock.close()
            raise
        self.info = reply

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def next_id(self) -> int:
        return next(self._ids)

    def send(self, msg: dict) -> None:
        data = protocol.encode(msg)
        with self._lock:
            try:
                self.sock.sendall(data)
            except OSError as e:
                raise Lost(f"the connection to the run is gone ({e.strerror or e})") from None

    def read(self) -> dict | None:
        """The next message or event; None at the end of the connection. Raises socket.timeout."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                if line.strip():
                    return protocol.decode(line)
                continue
            if len(self._buf) > MAX_LINE:
                raise UserError("control socket: the run sent a line that is too long")
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self._buf += chunk

    def request(self, op: str, on_event=None, **fields) -> dict:
        """Send a request and wait for its reply; events that come first go to `on_event`. Returns the result."""
        rid = self.next_id()
        self.send({"id": rid, "op": op, **fields})
        while True:
            try:
                msg = self.read()
            except socket.timeout:
                raise UserError(f"the run did not answer {op} in time (is it stuck in a long step?)") from None
            if msg is None:
                raise Lost("the run closed the connection before answering (it has ended)")
            if "seq" in msg:
                if on_event is not None:
                    on_event(msg)
                continue
            if "error" in msg and "id" not in msg:
                raise UserError(str(msg["error"]))
            if msg.get("id") != rid:
                continue
            if not msg.get("ok"):
                raise Refused(str(msg.get("error", "refused")))
            return msg.get("result") or {}
