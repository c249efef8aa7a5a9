"""Finding runs and their state from their directories, and connecting to a running one.

A run is going when a process holds its log open: `EventLog` keeps an exclusive
flock on `events.jsonl` while it writes (the kernel drops it when the process dies,
even by SIGKILL), so `log_live` asks for a shared lock without waiting. Its state
otherwise comes from the log's header and its last lines (`tail`, read backwards,
bounded). `connect(run_dir, role)` opens its control channel; a run that is not
going is a one-line `UserError` (exit status 2), and a socket or record it left
behind (the process was killed) is removed first. `resolve` turns what a person
typed (a run directory, its events.jsonl, a name or a run id under RUNS_DIR)
into a run directory. Pure Python, stdlib only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - no flock: every run reads as not going
    fcntl = None

from schedtui.control import paths
from schedtui.control.client import Connection, Stale
from schedtui.errors import UserError

LOG = "events.jsonl"
MAX_HEADER = 4 << 20
TAIL_BLOCK = 1 << 16
MAX_TAIL = 64 << 20  # how far back `tail` looks for the last epoch


@dataclass
class RunInfo:
    run_dir: Path
    header: dict
    live: bool  # a process holds the log open: the run goes
    record: dict | None  # control.json
    last: dict  # from the log's tail: "last" (the last event), "step" (the last step event)

    @property
    def status(self) -> str:
        if self.live:
            return "running"
        end = self.end
        return str(end.get("status")) if end else "killed"

    @property
    def end(self) -> dict | None:
        last = self.last.get("last")
        return last if last is not None and last.get("type") == "end" else None

    @property
    def step(self) -> int:
        for k in ("last", "step"):
            ev = self.last.get(k)
            if ev is not None and isinstance(ev.get("step"), int):
                return ev["step"]
        return 0

    @property
    def total_steps(self) -> int | None:
        spe, epochs = self.header.get("steps_per_epoch"), (self.header.get("config") or {}).get("epochs")
        return spe * epochs if isinstance(spe, int) and isinstance(epochs, int) else None


def read_header(run_dir: Path) -> dict | None:
    """The log's first line as a dict, or None when `run_dir` holds no schedtui log."""
    try:
        with open(Path(run_dir) / LOG, "rb") as f:
            first = f.readline(MAX_HEADER)
        head = json.loads(first)
    except (OSError, ValueError):
        return None
    return head if isinstance(head, dict) and head.get("format") == "schedtui-events" else None


def log_live(run_dir: Path) -> bool:
    """Whether a process holds the run's log open for writing (the run is going)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(Path(run_dir) / LOG, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: cannot tell
        return False
    finally:
        os.close(fd)  # closing drops the shared lock, if we got it
    return False


def tail(run_dir: Path, want=("step", "epoch", "eval"), max_bytes: int = MAX_TAIL) -> dict:
    """type -> the last event of that type in the log (read backwards, at most `max_bytes`), and "last": the last
    complete event (an ended run's is its `end`: nothing is written after it, and a resume writes past it)."""
    found: dict = {}
    need = set(want) | {"last"}
    try:
        f = open(Path(run_dir) / LOG, "rb")
    except OSError:
        return found
    with f:
        size = pos = f.seek(0, 2)
        carry = b""
        while pos > 0 and need - found.keys() and size - pos < max_bytes:
            n = min(TAIL_BLOCK, pos)
            pos -= n
            f.seek(pos)
            lines = (f.read(n) + carry).split(b"\n")
            carry = lines.pop(0) if pos > 0 else b""  # the start of a line that began in an earlier block
            for raw in reversed(lines):
                i = raw.find(b'"type":"', 0, 64)
                if i < 0:
                    continue
                j = raw.find(b'"', i + 8)
                t = raw[i + 8:j].decode("ascii", "replace")
                if (t in need and t not in found) or "last" not in found:
                    try:
                        ev = json.loads(raw)
                    except ValueError:  # a torn last line
                        continue
                    if isinstance(ev, dict):
                        found.setdefault("last", ev)
                        if t in need:
                            found.setdefault(t, ev)
    return found


def inspect(run_dir: Path) -> RunInfo | None:
    """What `run_dir`'s files say about the run; None when it is not a run directory."""
    header = read_header(run_dir)
    if header is None:
        return None
    live = log_live(run_dir)
    return RunInfo(Path(run_dir), header, live, paths.read_record(run_dir), tail(run_dir, ("step",)))


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run directory directly under `runs_dir`, newest first (by the header's start time, then name)."""
    try:
        dirs = [d for d in Path(runs_dir).iterdir() if d.is_dir()]
    except OSError:
        return []
    runs = [info for info in map(inspect, dirs) if info is not None]
    runs.sort(key=lambda r: (str(r.header.get("wall", "")), r.run_dir.name), reverse=True)
    return runs


def resolve(arg: str, runs_dir: Path) -> Path:
    """A run directory from a path (the directory or its events.jsonl), a directory name under `runs_dir`, or a run id."""
    p = Path(arg).expanduser()
    if p.is_file() and p.name == LOG:
        p = p.parent
    if p.is_dir():
        if read_header(p) is None:
            raise UserError(f"{p}: not a run directory (no schedtui events.jsonl in it)")
        return p
    q = Path(runs_dir) / arg
    if "/" not in arg and q.is_dir() and read_header(q) is not None:
        return q
    for info in list_runs(runs_dir):
        if info.header.get("run_id") == arg:
            return info.run_dir
    raise UserError(f"{arg}: no such run (not a run directory, and no run under {runs_dir} has that name or id)")


def newest_running(runs_dir: Path) -> Path:
    """The newest run under `runs_dir` that has a control socket and goes (a socket that answers: where the log's
    lock cannot tell)."""
    for info in list_runs(runs_dir):
        if info.record is None:
            continue
        if info.live:
            return info.run_dir
        try:
            connect(info.run_dir, "ps", timeout=2.0)[0].close()
            return info.run_dir
        except UserError:
            continue
    raise UserError(f"no running run under {runs_dir} (schedtui ps {runs_dir} lists them)")


def cleanup(info: RunInfo) -> None:
    """Remove what a run that is no longer going left behind (called once its socket did not answer)."""
    rec = info.record
    if info.live or rec is None:
        return
    sock = rec.get("socket")
    paths.remove(info.run_dir, Path(sock) if paths.trusted_socket(sock) is None else None)


def ended_line(info: RunInfo) -> str:
    if info.status == "killed":
        return f"{info.run_dir}: no running run (its process ended without an end event at step {info.step}: killed?)"
    return f"{info.run_dir}: no running run (it ended {info.status} at step {info.step})"


def connect(run_dir: Path, role: str, timeout: float | None = 5.0) -> tuple[Connection, RunInfo]:
    """The run's control channel; UserError (one line, exit 2) when the run is not going or cannot be reached.
    A run answers on its socket while it goes (asked even where the log's lock cannot tell: a file system without
    locks); a socket nobody answers on, of a run no process holds, is removed with its record."""
    info = inspect(run_dir)
    if info is None:
        raise UserError(f"{run_dir}: not a run directory (no schedtui events.jsonl in it)")
    rec = info.record
    why = "" if rec is None else paths.trusted_socket(rec.get("socket"))
    if rec is not None and why is None:
        try:
            conn = Connection(rec["socket"], role, timeout=timeout)
        except Stale:
            conn = None
        if conn is not None:
            if conn.info.get("run_id") == info.header.get("run_id"):
                info.live = True
                return conn, info
            conn.close()
            why = f"it serves another run ({conn.info.get('run_id')})"
    if not info.live:
        cleanup(info)
        raise UserError(ended_line(info))
    if rec is None:
        raise UserError(f"{run_dir}: the run is going but has no control socket (an own loop, or one started "
                        "without the schedtui command)")
    raise UserError(f"{run_dir}: the run is going but its control socket does not answer{f' ({why})' if why else ''}")
