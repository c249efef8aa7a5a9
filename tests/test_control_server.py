"""The control socket served from a real (tiny, CPU) run in this process, and clients on real sockets.

Private and recorded, several clients at once, every event once and in order to an
attached source (history from the log, then live), a client that never reads falls
behind without holding anything up, bad requests and another protocol version are
one line, another uid is refused, and the socket goes when the run ends.
"""

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from engine_helpers import TINY_MOONS

from schedtui.config import load_config
from schedtui.control import protocol, server
from schedtui.control.client import Connection
from schedtui.errors import UserError
from schedtui.events import read_log
from schedtui.launch import start_run
from schedtui.ui.remote import RemoteSource


@pytest.fixture(autouse=True)
def control_dir(monkeypatch):
    """Sockets of these tests in a short private directory of their own (/tmp: any uid may pass through it)."""
    d = tempfile.mkdtemp(prefix="st-", dir="/tmp")
    monkeypatch.setenv("SCHEDTUI_CONTROL_DIR", d)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def started(tmp_path, *sets):
    cfg, _ = load_config("moons", [*TINY_MOONS, *sets])
    run = start_run(cfg, tmp_path / "data", tmp_path / "runs", start=False, control=True)
    assert run.control is not None
    return run


def socket_of(run) -> Path:
    return Path(json.loads((run.run_dir / "control.json").read_text())["socket"])


def read_all(conn) -> list[dict]:
    out = []
    while (msg := conn.read()) is not None:
        out.append(msg)
    return out


def wait_for(pred, timeout=30.0, what="condition"):
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_the_socket_is_private_recorded_serves_several_clients_and_goes_with_the_run(tmp_path, control_dir):
    run = started(tmp_path, "epochs=3")
    sock = socket_of(run)
    assert sock.parent == control_dir and len(os.fsencode(sock)) < 100
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600 and stat.S_IMODE(os.stat(control_dir).st_mode) == 0o700
    screen, ctl = Connection(sock, "attach"), Connection(sock, "ctl")
    assert screen.info["run_id"] == run.header["run_id"] and screen.info["pid"] == os.getpid()
    st = ctl.request("status")
    assert st["screens"] == 1 and st["clients"] == 2 and st["state"] == "ready"
    screen.request("events", **{"from": 1})
    run.engine.start()
    assert run.engine.join(60)
    streamed = [m for m in read_all(screen) if "seq" in m]  # the server closes once the run has ended
    logged = read_log(run.run_dir / "events.jsonl").events
    assert streamed == logged and streamed[-1]["type"] == "end"  # every event, once, as the log has it
    wait_for(lambda: not sock.exists() and not (run.run_dir / "control.json").exists(), 5, "the socket removed")
    assert read_all(ctl) == []


def test_a_stream_is_the_logs_own_bytes_from_the_seq_asked_to_the_end(tmp_path):
    """The server forwards the lines the log writer encoded (nothing is encoded twice): a client that asks from
    seq K mid-run gets the file's very bytes from event K on, up to the `end` event, before the server closes."""
    run = started(tmp_path, "epochs=20000")
    log_path = run.run_dir / "events.jsonl"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(socket_of(run)))
    sock.sendall(protocol.encode(protocol.hello("attach")))
    run.engine.start()
    wait_for(lambda: log_path.read_bytes().count(b'"type":"step"') > 30, what="steps in the log")
    k = log_path.read_bytes().count(b"\n") + 3  # past what the file holds now: the stream starts mid-batch
    sock.sendall(protocol.encode({"id": 1, "op": "events", "from": k}))
    wait_for(lambda: log_path.read_bytes().count(b"\n") > k + 100, what="more steps")
    run.engine.send("stop").result(30)
    assert run.engine.join(60)
    got = bytearray()
    sock.settimeout(10)
    while chunk := sock.recv(65536):
        got += chunk
    sock.close()
    lines = bytes(got).splitlines(keepends=True)
    streamed = [line for line in lines if line.startswith(b'{"seq":')]
    assert [json.loads(line) for line in lines if not line.startswith(b'{"seq":')] == [
        {"hello": protocol.NAME, "version": protocol.VERSION, "run_id": run.header["run_id"], "pid": os.getpid(),
         "run_dir": str(run.run_dir)}, {"id": 1, "ok": True}]
    logged = log_path.read_bytes().splitlines(keepends=True)  # the header is seq 0: line k is event k
    assert streamed == logged[k:] and json.loads(streamed[0])["seq"] == k
    assert json.loads(streamed[-1])["type"] == "end"
    chunks = [(5, b"a\nb\n"), (7, b"c\nd\ne\n")]  # (first seq, lines) as the writer hands them over
    assert [server._lines_from(chunks, k) for k in (6, 8, 10)] == [b"b\nc\nd\ne\n", b"d\ne\n", b""]


def test_an_attached_source_gets_every_event_once_in_order_and_steers_as_attach(tmp_path):
    run = started(tmp_path, "epochs=20000")
    log_path = run.run_dir / "events.jsonl"
    run.engine.start()
    wait_for(lambda: log_path.read_bytes().count(b'"type":"step"') > 50, what="steps in the log")
    source = RemoteSource(Connection(socket_of(run), "attach"), run.run_dir)  # mid-run: history, then live
    assert source.history == log_path and source.history_seq > 50  # the past: the screen reads it, bounded
    source.begin()
    seen = source.poll()
    assert seen[0]["type"] == "header"
    ev = source.send("edit", knob="dropout", op="set", value=0.2).result(30)
    assert ev["type"] == "edit" and ev["by"] == "attach" and ev["new"] == 0.2
    with pytest.raises(UserError, match="dropout"):
        source.send("edit", knob="dropout", op="set", value=1.5).result(30)
    source.send("stop").result(30)
    while not source.ended:
        seen += source.poll()
        assert source.error is None
        time.sleep(0.05)
    seen += source.poll()
    assert run.engine.join(30)
    first = source.history_seq + 1  # after the header: every event past the history, with no gap or repeat
    assert [e["seq"] for e in seen[1:]] == list(range(first, first + len(seen) - 1))
    assert seen[1:] == read_log(log_path).events[first - 1:] and seen[-1]["by"] == "attach"


def test_a_client_that_never_reads_falls_behind_and_holds_nothing_up(tmp_path, monkeypatch):
    monkeypatch.setattr(server, "MAX_OUT", 4096)  # a few step events
    run = started(tmp_path, "epochs=300")
    sock = socket_of(run)
    stuck = Connection(sock, "attach")
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.request("events", **{"from": 1})
    source = RemoteSource(Connection(sock, "attach"), run.run_dir)  # told it is behind too: re-reads the log
    source.begin()
    run.engine.start()
    assert run.engine.join(60), "the run waited for a client"
    seen = []
    wait_for(lambda: seen.extend(source.poll()) or source.ended, what="the attached source to see the end")
    seen += source.poll()
    assert source.error is None
    assert [e["seq"] for e in seen] == list(range(len(seen))) and seen[-1]["type"] == "end"
    got = read_all(stuck)
    notices = [m for m in got if m.get("notice") == "behind"]
    assert len(notices) == 1  # told once, then no more events until it asks again
    assert got.index(notices[0]) == len(got) - 1


def test_bad_requests_and_another_protocol_version_are_one_line(tmp_path, monkeypatch):
    run = started(tmp_path, "epochs=3")
    sock = socket_of(run)
    run.engine.send("pause")  # held at its first step boundary, where commands apply
    run.engine.start()
    ctl = Connection(sock, "ctl")
    with pytest.raises(UserError, match="unknown op"):
        ctl.request("frob")
    with pytest.raises(UserError, match="args"):
        ctl.request("send", command="edit", args=[1, 2])
    with pytest.raises(UserError, match="unknown command"):
        ctl.request("send", command="format_disk", args={})
    with pytest.raises(UserError, match="edit"):
        ctl.request("send", command="edit", args={"knob": "lr", "op": "set", "valu": 1})
    assert ctl.request("status")["state"] == "paused"  # still served

    raw = socket.socket(socket.AF_UNIX)
    raw.connect(str(sock))
    raw.sendall(b'{"hello": "schedtui-control", "version": 99, "role": "ctl"}\n')
    lines = b"".join(iter(lambda: raw.recv(4096), b"")).splitlines()  # one line, then closed
    assert len(lines) == 1 and "version 99" in json.loads(lines[0])["error"]
    raw.close()

    monkeypatch.setattr(protocol, "hello", lambda role: {"hello": protocol.NAME, "version": 2, "role": role})  # another schedtui
    with pytest.raises(UserError, match="version 2 is not spoken here"):
        Connection(sock, "ctl")
    monkeypatch.undo()
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(str(sock))
    raw.sendall(b"x" * (protocol.MAX_REQUEST + 10))
    assert "longer than" in json.loads(raw.recv(4096).splitlines()[0])["error"]
    raw.close()
    ctl.request("send", command="stop", args={})
    assert run.engine.join(30)
    wait_for(lambda: not sock.exists(), 5, "the socket removed")
    types = [e["type"] for e in read_log(run.run_dir / "events.jsonl").events]
    assert types == ["pause", "checkpoint", "end"]  # nothing the bad requests asked for happened
    assert not sock.exists() and not (run.run_dir / "control.json").exists()


NOBODY = 65534
OTHER_UID = f"""
import os, socket, sys
os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("permission denied"); sys.exit(0)
try:
    s.sendall(b'{{"hello": "schedtui-control", "version": 1, "role": "ctl"}}\\n')
except BrokenPipeError:  # refused before it could say hello: the refusal is there to read
    pass
print(s.recv(4096).decode().strip())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
def test_another_uid_is_refused(tmp_path, control_dir):
    run = started(tmp_path, "epochs=3")
    sock = socket_of(run)

    def other_uid() -> str:
        return subprocess.run([sys.executable, "-c", OTHER_UID, str(sock)], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()

    assert other_uid() == "permission denied"  # the directory is 0700
    os.chmod(control_dir, 0o711)  # even if someone opens the directory and the socket up, the peer check refuses
    os.chmod(sock, 0o666)
    try:
        reply = json.loads(other_uid())
    finally:
        os.chmod(control_dir, 0o700)
        os.chmod(sock, 0o600)
    assert reply == {"error": f"control socket: connection refused: uid {NOBODY} does not own this run"}
    assert Connection(sock, "ctl").request("status")["clients"] == 1  # and it serves its owner as before
    run.control.close()
