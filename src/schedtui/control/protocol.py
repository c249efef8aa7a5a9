"""The control socket's wire protocol: JSON objects, one per line, with a version in the hello.

A connection starts with the client's hello and the server's answer:

    -> {"hello": "schedtui-control", "version": 1, "role": "ctl" | "attach" | "ps" | "ui"}
    <- {"hello": "schedtui-control", "version": 1, "run_id": ..., "pid": ..., "run_dir": ...}
    <- {"error": "one line"}          (then the server closes: another version, another uid, ...)

Then requests, each with an `id` the reply carries back:

    -> {"id": 1, "op": "send", "command": "edit", "args": {"knob": "lr", "op": "set", "value": 0.1}}
    <- {"id": 1, "ok": true, "result": {the event the command produced}}
    <- {"id": 1, "ok": false, "error": "one line: why it was refused (nothing changed)"}
    -> {"id": 2, "op": "status"}       <- {"id": 2, "ok": true, "result": {"state", "step", "epoch", "pid", ...}}
    -> {"id": 3, "op": "events", "from": N}
    <- {"id": 3, "ok": true}           then every event with seq >= N emitted from here on, as log lines

`send` takes the commands of `engine.commands.OPS` (pause, resume, edit, preview,
describe, validate, checkpoint, swa, stop); the server records the client's role as
`by` on the events a command made. After the `events` reply, everything before it is
in the log file (the server flushes it first), so a client reads the file, then
takes streamed events past what it read: no gap, no duplicate. Streamed events are
the log's own lines (they start with `{"seq":`). A client that does not keep up is
sent `{"notice": "behind", "seq": S}` and no more events; it reads the log from where
it was and asks `events` again. When the run ends the server sends what is left (the
`end` event included) and closes.

Pure Python, stdlib only; no torch, textual or rich.
"""

from __future__ import annotations

import json

from schedtui.errors import UserError

NAME = "schedtui-control"
VERSION = 1
ROLES = ("ctl", "attach", "ps", "ui")  # ui: the screen the run was started with (`control.own_screen`)
REQUEST_OPS = ("send", "status", "events")
MAX_REQUEST = 64 * 1024  # bytes in one line from a client; longer is an error and the connection closes
EVENT_PREFIX = b'{"seq":'


def encode(obj: dict) -> bytes:
    """One message as its line (newline included); values json cannot encode become strings."""
    return json.dumps(obj, separators=(",", ":"), default=str).encode() + b"\n"


def decode(line: bytes, who: str = "the run") -> dict:
    """A line -> its message; a UserError (one line) when it is not a JSON object."""
    try:
        obj = json.loads(line)
    except ValueError:
        raise UserError(f"control socket: {who} sent something that is not JSON") from None
    if not isinstance(obj, dict):
        raise UserError(f"control socket: {who} sent something that is not a JSON object")
    return obj


def hello(role: str) -> dict:
    return {"hello": NAME, "version": VERSION, "role": role}


def check_hello(msg: dict) -> str | None:
    """Why a client's hello is refused (one line), or None when it is fine."""
    if msg.get("hello") != NAME:
        return f"control socket: expected a {NAME} hello first"
    v = msg.get("version")
    if v != VERSION:
        return f"control protocol version {v!r} is not spoken here (this run speaks version {VERSION}; use the same schedtui)"
    if msg.get("role") not in ROLES:
        return f"control socket: role must be one of {', '.join(ROLES)}"
    return None
