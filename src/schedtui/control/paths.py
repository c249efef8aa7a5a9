"""Where a run's control socket lives, and the record of it in the run directory.

Sockets go in one private directory per user, named by run id, so their paths stay
far below the ~108-byte limit of a Unix socket path whatever the run directory:
`$SCHEDTUI_CONTROL_DIR` when set, else `$XDG_RUNTIME_DIR/schedtui`, else
`/tmp/schedtui-<uid>`. The directory is created 0700 and must be a real directory
(not a link) owned by this uid with no access for anyone else; otherwise there is
no control channel (never a chmod of someone's directory). The socket is 0600.

`RUN_DIR/control.json` records the socket (`socket`, `pid`, `run_id`, `protocol`).
It is data from a file: a client uses the path only when it is a socket owned by
this uid inside such a private directory (`trusted_socket`), and after connecting
checks the server's uid too. Pure Python, stdlib only.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

RECORD = "control.json"
MAX_PATH = 100  # sun_path holds 107 bytes and a NUL on Linux (103 on macOS); keep clear of both


def control_dir() -> Path:
    explicit = os.environ.get("SCHEDTUI_CONTROL_DIR")
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_absolute() and private_dir(Path(xdg)) is None and len(xdg) < MAX_PATH - 40:
        return Path(xdg) / "schedtui"
    return Path("/tmp") / f"schedtui-{os.geteuid()}"


def private_dir(d: Path) -> str | None:
    """Why `d` is not a private directory of this uid (one line), or None when it is."""
    try:
        st = os.lstat(d)
    except OSError as e:
        return f"{d}: {e.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{d}: not a directory"
    if st.st_uid != os.geteuid():
        return f"{d}: owned by uid {st.st_uid}, not by this user"
    if st.st_mode & 0o077:
        return f"{d}: others may use it (mode {stat.S_IMODE(st.st_mode):04o}; it must be 0700)"
    return None


def prepare_dir() -> Path:
    """The control directory, created 0700 if missing; OSError (with a one-line reason) when it is not private."""
    d = control_dir()
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"{d}: cannot create it ({e.strerror})") from None
    why = private_dir(d)
    if why is not None:
        raise OSError(why)
    return d


def socket_path(run_id: str) -> Path:
    """The socket for run `run_id` (a run id is hex; anything else is made safe for a file name)."""
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(run_id))[:40] or "run"
    path = prepare_dir() / f"{name}.sock"
    if len(os.fsencode(path)) > MAX_PATH:
        raise OSError(f"{path}: too long for a socket path (set SCHEDTUI_CONTROL_DIR to a short directory)")
    return path


def trusted_socket(path) -> str | None:
    """Why the recorded `path` must not be used (one line), or None: a socket of this uid in a private directory."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return "control.json names no absolute socket path"
    p = Path(path)
    why = private_dir(p.parent)
    if why is not None:
        return why
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return f"{p}: gone"
    except OSError as e:
        return f"{p}: {e.strerror}"
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid():
        return f"{p}: not a socket of this user"
    return None


def write_record(run_dir: Path, record: dict) -> None:
    tmp = Path(run_dir) / f".{RECORD}.{os.getpid()}"
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, Path(run_dir) / RECORD)


def read_record(run_dir: Path) -> dict | None:
    """control.json of `run_dir`, or None when there is none or it cannot be read as a JSON object."""
    try:
        with open(Path(run_dir) / RECORD, "rb") as f:
            rec = json.loads(f.read(1 << 16))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def remove(run_dir: Path | None, sock: Path | None, pid: int | None = None) -> None:
    """Remove a socket and the record naming it (a record another process wrote since is left alone)."""
    if sock is not None:
        try:
            os.unlink(sock)
        except OSError:
            pass
    if run_dir is not None:
        rec = read_record(run_dir)
        if rec is not None and (sock is None or rec.get("socket") == str(sock)) and (pid is None or rec.get("pid") == pid):
            try:
                os.unlink(Path(run_dir) / RECORD)
            except OSError:
                pass
