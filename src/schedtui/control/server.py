"""The control socket's server: one light thread in the training process, beside the engine.

`ControlServer(engine, run_dir).start()` listens on the run's socket
(`control.paths`: a private directory, the socket 0600, `RUN_DIR/control.json`
naming it) and serves the protocol of `control.protocol` to any number of clients
(up to `MAX_CLIENTS`) until the run ends; then it sends what is left, closes every
connection and removes the socket and the record. `close()` does the same at once
(it is also registered with atexit, so a process that exits leaves no socket).
Start-up failures (no private directory, a path too long) leave the run without a
channel: `start()` returns False and `error` says why in one line.

Costs, kept off the training thread: the engine is touched only through
`engine.send` (commands queue for the next step boundary; a future's callback
writes one byte to a pipe to wake this thread) and a few attribute reads for
`status`. The log writer's encoded lines are subscribed (`subscribe(lines=True)`) only
while a client streams events, so with no screen attached the per-step cost is
zero; the thread sleeps in `select` (holding no GIL) and wakes twice a second to
see whether the run has ended (its log is closed and, while it streams, the
writer has encoded the last event), or `STREAM_S` apart while it streams, when it
sends the lines the writer encoded since (the very bytes of the file: no event
is encoded a second time). All sockets are non-blocking with bounded buffers: a client that does not
read falls behind (it is told to re-read the log) and a dead one is dropped; none
can make the engine wait. Every connection's peer credentials are checked
(SO_PEERCRED): another uid is refused.

Imports only the standard library and `schedtui.control`/`schedtui.events`; the
engine is an object it is handed (no torch, textual or rich).
"""

from __future__ import annotations

import atexit
import os
import selectors
import threading
import time
from collections import deque
from pathlib import Path

from schedtui.control import paths, protocol
from schedtui.control.sockets import Peer, listen, peer_uid

IDLE_S = 0.5  # how often an idle server looks whether the run has ended
STREAM_S = 0.1  # how often new events are sent to streaming clients
MAX_CLIENTS = 32
MAX_OUT = 4 << 20  # bytes waiting for one client; past this it is behind and re-reads the log
HELLO_S = 10.0  # a connection that says nothing this long is closed
FINAL_S = 2.0  # at the end, how long clients get to take what is left


class ControlServer:
    def __init__(self, engine, run_dir):
        self.engine, self.run_dir = engine, Path(run_dir)
        self.log = engine.log
        self.path: Path | None = None
        self.error: str | None = None
        self._listener = None  # the listening socket
        self._clients: dict[int, Peer] = {}
        self._answered: deque = deque()  # (client, request id, future) whose future is done
        self._sub = None  # the subscription to the log writer's lines, while a client streams
        self._stop = False
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._wake_lock = threading.Lock()  # the engine thread's wake-up never writes to a closed (reused) fd

    # ---- the run's side --------------------------------------------------------------------------
    def start(self) -> bool:
        """Listen and serve on a thread; False (and `error`) when the run gets no channel."""
        run_id = str(self.log.header.get("run_id", "run"))
        try:
            self.path = paths.socket_path(run_id)
            self._listener = listen(self.path)
        except OSError as e:
            self.error = f"no control socket: {e.strerror or e}" if e.strerror else f"no control socket: {e}"
            self.path = None
            return False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        try:
            paths.write_record(self.run_dir, {"socket": str(self.path), "pid": os.getpid(), "run_id": run_id,
                                              "protocol": protocol.VERSION})
        except OSError as e:
            self.error = f"no control socket: cannot write {paths.RECORD} ({e.strerror})"
            self._cleanup()
            return False
        self._thread = threading.Thread(target=self._serve, name="schedtui-control", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        return True

    def close(self, timeout: float = FINAL_S + 1.0) -> None:
        """Stop serving: send what is queued (briefly), close every connection, remove the socket and record."""
        atexit.unregister(self.close)
        self._stop = True
        self._wake()
        if self._thread is not None and self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._cleanup()

    @property
    def screens(self) -> int:
        """Screens (clients that said hello as `attach`, or `ui`: the one the run was started with)."""
        return sum(1 for c in list(self._clients.values()) if c.role in ("attach", "ui"))

    def _wake(self) -> None:
        with self._wake_lock:
            if self._wake_w < 0:
                return
            try:
                os.write(self._wake_w, b"x")
            except OSError:  # the pipe is full: the server wakes anyway
                pass

    # ---- the thread ------------------------------------------------------------------------------
    def _serve(self) -> None:
        sel = self._sel = selectors.DefaultSelector()
        try:
            sel.register(self._listener, selectors.EVENT_READ, None)
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
            while not self._stop:
                over = self._run_over()
                for key, mask in sel.select(0 if over else STREAM_S if self._sub is not None else IDLE_S):
                    if key.data is None:
                        self._accept()
                    elif key.data == "wake":
                        try:
                            os.read(self._wake_r, 4096)
                        except OSError:
                            pass
                    else:
                        if mask & selectors.EVENT_READ:
                            self._read(key.data)
                        if mask & selectors.EVENT_WRITE:
                            self._send(key.data)
                self._answer()
                self._pump()
                self._expire()
                if over:
                    break
            self._pump()
            self._finish()
        except Exception as e:  # never take the process down; the run goes on without its channel, and says so
            try:
                self.log.emit("warning", self.engine.step, message=f"control socket closed: {type(e).__name__}: {e}")
            except Exception:  # the log is closed: the run has ended anyway
                pass
        finally:
            self._cleanup()

    def _run_over(self) -> bool:
        # the engine closes its log when the run ends, however it ends; a stream waits for the writer's last lines
        return self.log.closed and (self._sub is None or self.log.finished)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            c = Peer(sock)
            uid = peer_uid(sock)
            if uid != os.geteuid():
                self._refuse(c, f"control socket: connection refused: uid {uid} does not own this run")
                continue
            if len(self._clients) >= MAX_CLIENTS:
                self._refuse(c, f"control socket: {MAX_CLIENTS} clients are connected already")
                continue
            self._clients[sock.fileno()] = c
            self._sel.register(sock, selectors.EVENT_READ, c)

    def _refuse(self, c: Peer, why: str) -> None:
        try:
            c.sock.send(protocol.encode({"error": why}))
        except OSError:
            pass
        c.sock.close()

    def _drop(self, c: Peer) -> None:
        if self._clients.pop(c.sock.fileno(), None) is None:
            return
        try:
            self._sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        if c.streaming:
            c.streaming = False
            self._streams_changed()

    def _read(self, c: Peer) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c)
            return
        c.rbuf += data
        while not c.closing and c.sock.fileno() in self._clients:
            nl = c.rbuf.find(b"\n")
            if nl < 0:
                if len(c.rbuf) > protocol.MAX_REQUEST:
                    self._fail(c, f"control socket: a request longer than {protocol.MAX_REQUEST} bytes")
                return
            line, c.rbuf = bytes(c.rbuf[:nl]), c.rbuf[nl + 1:]
            if line.strip():
                try:
                    self._handle(c, line)
                except Exception as e:  # a request the engine could not even queue: the client hears why
                    self._fail(c, f"control socket: {type(e).__name__}: {e}")

    def _fail(self, c: Peer, why: str) -> None:
        """Say why in one line, then close once it is sent."""
        self._queue(c, protocol.encode({"error": why}))
        c.closing = True
        self._send(c)

    def _handle(self, c: Peer, line: bytes) -> None:
        try:
            msg = protocol.decode(line, "the client")
        except Exception as e:
            self._fail(c, str(e))
            return
        if c.role is None:
            why = protocol.check_hello(msg)
            if why is not None:
                self._fail(c, why)
                return
            c.role = msg["role"]
            self._reply(c, {"hello": protocol.NAME, "version": protocol.VERSION, "run_id": self.log.header.get("run_id"),
                            "pid": os.getpid(), "run_dir": str(self.run_dir)})
            return
        rid, op = msg.get("id"), msg.get("op")
        if op == "send":
            command, args = msg.get("command"), msg.get("args", {})
            if not isinstance(command, str) or not isinstance(args, dict):
                self._reply(c, {"id": rid, "ok": False, "error": "send: needs a command (a string) and args (an object)"})
                return
            try:
                fut = self.engine.send(command, **{**args, "by": c.role})
            except TypeError as e:  # an argument the call itself refuses
                self._reply(c, {"id": rid, "ok": False, "error": f"{command}: {e}"})
                return
            fut.add_done_callback(lambda f, c=c, rid=rid: (self._answered.append((c, rid, f)), self._wake()))
        elif op == "status":
            self._reply(c, {"id": rid, "ok": True, "result": self.status()})
        elif op == "events":
            start = msg.get("from", 1)
            if not isinstance(start, int) or isinstance(start, bool):
                self._reply(c, {"id": rid, "ok": False, "error": "events: `from` must be an integer seq"})
                return
            c.from_seq = start
            self._reply(c, {"id": rid, "ok": True})
            if not c.streaming:
                c.streaming = True
                self._streams_changed()
        else:
            self._reply(c, {"id": rid, "ok": False, "error": f"unknown op {op!r}; valid: {', '.join(protocol.REQUEST_OPS)}"})

    def status(self) -> dict:
        e = self.engine
        return {"run_id": self.log.header.get("run_id"), "run_dir": str(self.run_dir), "pid": os.getpid(),
                "state": e.status, "step": e.step, "epoch": e.epoch, "screens": self.screens,
                "clients": len(self._clients), "protocol": protocol.VERSION}

    def _answer(self) -> None:
        while self._answered:
            c, rid, fut = self._answered.popleft()
            if c.sock.fileno() not in self._clients:
                continue  # gone; the command applied all the same
            err = fut.exception()
            if err is None:
                self._reply(c, {"id": rid, "ok": True, "result": fut.result()})
            else:
                self._reply(c, {"id": rid, "ok": False, "error": str(err) if str(err) else type(err).__name__})

    def _reply(self, c: Peer, msg: dict) -> None:
        self._queue(c, protocol.encode(msg))
        self._send(c)

    def _streams_changed(self) -> None:
        """Subscribe to the log while any client streams, and only then."""
        want = any(c.streaming for c in self._clients.values())
        if want and self._sub is None:
            self._sub = self.log.subscribe(lines=True)
        elif not want and self._sub is not None:
            self.log.unsubscribe(self._sub)
            self._sub = None

    def _pump(self) -> None:
        """The lines the log writer encoded since the last pump, to every streaming client."""
        if self._sub is None:
            return
        get, chunks = self._sub.get_nowait, []
        try:
            while True:
                chunks.append(get())  # (first seq, lines)
        except Exception:  # queue.Empty
            pass
        if not chunks:
            return
        first = chunks[0][0]
        blob = b"".join(data for _, data in chunks)
        for c in list(self._clients.values()):
            if not c.streaming:
                continue
            data = blob if c.from_seq <= first else _lines_from(chunks, c.from_seq)
            if len(c.wbuf) + len(data) > MAX_OUT:  # it does not keep up: it re-reads the log instead
                c.streaming = False
                self._queue(c, protocol.encode({"notice": "behind", "seq": first - 1}))
                self._streams_changed()
            else:
                self._queue(c, data)
            self._send(c)

    def _queue(self, c: Peer, data: bytes) -> None:
        c.wbuf += data

    def _send(self, c: Peer) -> None:
        if c.sock.fileno() not in self._clients:
            return
        if c.wbuf:
            try:
                n = c.sock.send(c.wbuf)
                del c.wbuf[:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:  # the client went away
                self._drop(c)
                return
        want = bool(c.wbuf)
        if want != c.writing:
            c.writing = want
            self._sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0), c)
        if c.closing and not c.wbuf:
            self._drop(c)

    def _expire(self) -> None:
        now = time.monotonic()
        for c in list(self._clients.values()):
            if c.role is None and not c.closing and now - c.since > HELLO_S:
                self._fail(c, "control socket: no hello")

    def _finish(self) -> None:
        """The run is over: the last events and answers go out (for up to FINAL_S), then every connection closes."""
        self._answer()
        for c in list(self._clients.values()):
            c.closing = True
            self._send(c)
        deadline = time.monotonic() + FINAL_S
        while self._clients and time.monotonic() < deadline:
            for key, mask in self._sel.select(0.05):
                if isinstance(key.data, Peer):
                    if mask & selectors.EVENT_WRITE:
                        self._send(key.data)
                    elif mask & selectors.EVENT_READ:
                        try:
                            if not key.data.sock.recv(65536):
                                self._drop(key.data)
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            self._drop(key.data)
        for c in list(self._clients.values()):
            self._drop(c)

    def _cleanup(self) -> None:
        if self._sub is not None:
            self.log.unsubscribe(self._sub)
            self._sub = None
        for c in list(self._clients.values()):
            try:
                c.sock.close()
            except OSError:
                pass
        self._clients.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._wake_lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._wake_r = self._wake_w = -1
        if self.path is not None:
            paths.remove(self.run_dir, self.path, os.getpid())
            self.path = None


def _lines_from(chunks: list, seq: int) -> bytes:
    """The lines of `chunks` ((first seq, lines)) from event `seq` on (a line is one event; JSON has no raw newline)."""
    out = []
    for first, data in chunks:
        if first + data.count(b"\n") <= seq:
            continue
        lines = data.split(b"\n")[:-1]
        out.extend(line + b"\n" for i, line in enumerate(lines) if first + i >= seq)
    return b"".join(out)
