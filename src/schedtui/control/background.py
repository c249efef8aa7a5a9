"""A run without a terminal: started in the background (`--detach`), or going on after its terminal hung up.

- `start_detached(argv)`: the parent side of `schedtui ... --detach`. It starts the
  same command again, headless, in a new session (no terminal: a logout does not
  reach it), waits until the run has started (its run directory and control socket
  exist), prints how to attach, and returns 0. Anything the child says before that
  (a bad data directory...) is passed on with its exit status.
- `started(run_dir)`: the child's side, right after the run starts: its output goes
  to `RUN_DIR/output.log` and the parent is told where the run is.
- `hung_up(engine, run_dir, fds)`: the terminal went away (SIGHUP): what went to it
  goes to `RUN_DIR/output.log` and the log gets a `detach` event; the run goes on.
- `continue_headless(...)`: the live screen closed on a hang-up (or `q`, detach, or it
  failed): the run goes on under the headless display (plain lines in output.log) until it ends.

No torch; rich only inside `continue_headless`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path

from schedtui.interrupts import redirect_output
from schedtui.safe_text import visible

ENV = "SCHEDTUI_DETACHED"  # set for the child: report to the parent when started
READY = b"\x1eschedtui-started "
READY_FILE = "SCHEDTUI_READY_FILE"  # a data-parallel job's rank 0 writes its run directory there
OUTPUT = "output.log"
_detached: weakref.WeakSet = weakref.WeakSet()  # engines whose terminal went away


def start_detached(argv: list[str]) -> int:
    cmd = [sys.executable, "-m", "schedtui", *[a for a in argv if a != "--detach"], "--headless"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, ENV: "1"})
    said, run_dir = [], None
    try:
        for line in proc.stdout:
            if line.startswith(READY):
                run_dir = line[len(READY):].decode("utf-8", "replace").rstrip("\n")
                break
            said.append(line)
    except KeyboardInterrupt:  # given up while it starts: it goes too
        proc.terminate()
        proc.wait()
        return 130
    if run_dir is None:
        sys.stderr.write(b"".join(said).decode("utf-8", "replace"))
        return proc.wait() or 1
    proc.stdout.close()
    d = visible(run_dir)
    print(f"schedtui: running in the background (pid {proc.pid}); its output goes to {d}/{OUTPUT}")
    print(f"  schedtui attach {d}            the live screen (q detaches again)")
    print(f"  schedtui ctl {d} status        or pause, resume, stop, set KNOB VALUE, ... (schedtui ctl --help)")
    print(f"  schedtui ps {visible(Path(run_dir).parent)}")
    return 0


def start_job(argv: list[str], nproc: int, attach: bool) -> int:
    """`--nproc-per-node N`: the same command as a data-parallel job of N processes, started by torch's launcher
    (torchrun) in the background, its own output in a file; once rank 0's run has started, the live screen
    attached to it (`attach`: quitting detaches, the job goes on), or how to attach."""
    import tempfile
    import time

    args, skip = [], False
    for a in argv:  # the job's processes must not launch jobs of their own
        if skip:
            skip = False
        elif a == "--nproc-per-node":
            skip = True
        elif not a.startswith("--nproc-per-node=") and a != "--detach":
            args.append(a)
    fd, ready = tempfile.mkstemp(prefix="schedtui-job-", suffix=".started")
    os.close(fd)
    out = Path(ready).with_suffix(".log")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           "-m", "schedtui", *args, "--headless"]
    with open(out, "wb") as f:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, ENV: "1", READY_FILE: ready})
    run_dir = None
    try:
        while run_dir is None and proc.poll() is None:
            time.sleep(0.1)
            run_dir = Path(ready).read_text(encoding="utf-8").strip() or None
    except KeyboardInterrupt:
        proc.terminate()
        return 130
    finally:
        Path(ready).unlink(missing_ok=True)
    if run_dir is None:
        lines = out.read_text(encoding="utf-8", errors="replace").splitlines()
        said = [ln for ln in lines if ln.startswith("schedtui: ")] or lines[-5:]
        sys.stderr.write("\n".join(visible(ln) for ln in said) + "\n")
        return proc.wait() or 1
    d = visible(run_dir)
    if attach:
        from schedtui.commands.attach import main as attach_main

        return attach_main([run_dir])
    print(f"schedtui: a job of {nproc} processes runs in the background (launcher pid {proc.pid}, its output in {out})")
    print(f"  schedtui attach {d}            the live screen of rank 0 (q detaches again)")
    print(f"  schedtui ctl {d} status        or pause, resume, stop, set KNOB VALUE, ...")
    return 0


def started(run_dir: Path) -> None:
    """In a `--detach` child (else nothing): output to RUN_DIR/output.log, then tell the parent where the run is.
    In a data-parallel job (`--nproc-per-node`), rank 0 alone speaks, through the file READY_FILE names."""
    ready = os.environ.pop(READY_FILE, None)
    if os.environ.get("RANK", "0") != "0":
        os.environ.pop(ENV, None)
        return
    if os.environ.pop(ENV, None) is None:
        return
    if ready is not None:
        redirect_output(Path(run_dir) / OUTPUT)
        Path(ready).write_text(str(run_dir), encoding="utf-8")
        return
    parent = os.dup(1)
    redirect_output(Path(run_dir) / OUTPUT)
    try:
        os.write(parent, READY + os.fsencode(str(run_dir)) + b"\n")
    except OSError:  # the parent is gone (Ctrl-C); the run goes on all the same
        pass
    os.close(parent)


def hung_up(engine, run_dir: Path, fds: tuple, reason: str = "hangup") -> None:
    """The terminal went away (or the screen was detached from it: `reason` "key"): what went to it (`fds`, of 1
    and 2) goes to RUN_DIR/output.log, and the log gets a `detach` event; the run goes on. Safe to call from a
    signal handler (the work is done on a short thread: the handler may have interrupted a holder of the log's
    lock) and more than once (it acts once)."""
    if engine in _detached:
        return
    _detached.add(engine)
    out = Path(run_dir) / OUTPUT

    def work() -> None:
        where = {"output": str(out)} if redirect_output(out, fds) else {}
        try:
            engine.log.emit("detach", engine.step, reason=reason, **where)
            engine.log.flush(wait=False)
        except Exception:  # the run ended meanwhile (the log is closed): nothing to record
            pass

    threading.Thread(target=work, name="schedtui-detach", daemon=True).start()


def continue_headless(engine, events, state, run_dir: Path, refresh_hz: float, interrupts, reason: str = "hangup") -> None:
    """After the screen closed on a hang-up (or was detached: `reason` "key"; or failed: "screen"): the run goes
    on under the headless display (`events`, its subscription, folded into `state` so far), its output in
    RUN_DIR/output.log, until it ends."""
    from rich.console import Console

    from schedtui.headless import run_headless

    hung_up(engine, run_dir, interrupts.tty_fds, reason)
    run_headless(engine, events, state, Console(), refresh_hz, interrupts)
