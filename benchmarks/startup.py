"""Start-up: what `schedtui --help` and `schedtui replay` import, and how soon `schedtui moons` shows a screen.

    .venv/bin/python benchmarks/startup.py              # 3 runs of each (~30 s)
    .venv/bin/python benchmarks/startup.py --runs 1

1. `schedtui --help` and `schedtui replay LOG` (no terminal: it prints a summary) in a
   fresh interpreter each: wall time from launch to exit, and whether torch (or
   torchvision) got imported. Neither may import torch.
2. `schedtui moons` in a pseudo-terminal of `--size`: wall time from launch to the
   first screen (the status line's `STARTING`, drawn while torch still loads in the
   background), and to the run visibly training (`RUNNING`); then SIGTERM, which
   stops the run and ends the process.

A bare `python -c pass` start is measured alongside for scale. Medians of `--runs`.
Exits 1 when --help or replay imports torch (unless `--no-check`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import finish, machine_line, median, print_table  # noqa: E402

PROBE = """
import json, sys, time
t0 = time.perf_counter()
from schedtui.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
mods = sys.modules
print("\\n" + json.dumps({"code": code, "in_process_s": time.perf_counter() - t0, "torch": "torch" in mods,
                         "torchvision": "torchvision" in mods, "textual": "textual" in mods}))
"""


def probe(args: list[str], runs: int) -> dict:
    """`schedtui ARGS` in fresh interpreters: wall times, and what the last one imported."""
    times, info = [], {}
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
        info = json.loads(p.stdout.strip().splitlines()[-1])
        if info["code"] not in (0, None):
            raise RuntimeError(f"schedtui {' '.join(args)} exited {info['code']}: {p.stderr[-2000:]}")
    return {"wall_s": times, "median_s": median(times), **info}


def small_log(path: Path) -> Path:
    from event_log import write

    write(path, 2000)
    return path


def first_screen(runs_dir: Path, size: tuple[int, int], timeout: float) -> dict:
    """Launch `schedtui moons` in a pseudo-terminal; seconds until STARTING and RUNNING are drawn."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(size[0]), "LINES": str(size[1])}
    exe = Path(sys.executable).with_name("schedtui")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "schedtui"]
    t0 = time.perf_counter()
    proc = subprocess.Popen([*cmd, "moons", "--runs-dir", str(runs_dir)], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)
    os.close(slave)
    seen, marks = b"", {}
    try:
        while "running" not in marks and time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            seen = (seen + chunk)[-200_000:]
            now = time.perf_counter() - t0
            if "starting" not in marks and b"STARTING" in seen:
                marks["starting"] = now
            if b"RUNNING" in seen:
                marks["running"] = now
    finally:
        proc.send_signal(signal.SIGTERM)
        end = time.perf_counter() + 15
        while proc.poll() is None and time.perf_counter() < end:  # keep reading so its writes never block
            if select.select([master], [], [], 0.05)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    if "starting" not in marks:
        raise RuntimeError(f"no first screen within {timeout} s: {seen[-2000:]!r}")
    return marks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="100x30", help="the pseudo-terminal's COLSxROWS")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--json", help="default benchmarks/results/startup.json")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args(argv)
    cols, rows_ = (int(v) for v in args.size.lower().split("x"))
    bare = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory(prefix="schedtui-startup-") as tmp:
        help_ = probe(["--help"], args.runs)
        replay = probe(["replay", str(small_log(Path(tmp) / "events.jsonl"))], args.runs)
        screens = [first_screen(Path(tmp) / "runs", (cols, rows_), args.timeout) for _ in range(args.runs)]
    starting = median([s["starting"] for s in screens])
    running = median([s["running"] for s in screens if "running" in s])
    rows = [
        ["python -c pass", f"{median(bare):.2f} s", ""],
        ["schedtui --help", f"{help_['median_s']:.2f} s", "torch imported!" if help_["torch"] else "no torch"],
        ["schedtui replay LOG (no terminal)", f"{replay['median_s']:.2f} s", "torch imported!" if replay["torch"] else "no torch"],
        ["schedtui moons: first screen", f"{starting:.2f} s", "STARTING, torch loading behind it"],
        ["schedtui moons: training shown", f"{running:.2f} s", "RUNNING"],
    ]
    print_table(["", "launch to", ""], rows, title=f"start-up, median of {args.runs}; {machine_line()}")
    missed = [f"{name} imports torch" for name, r in (("--help", help_), ("replay", replay)) if r["torch"]]
    return finish("startup", {"python_s": bare, "help": help_, "replay": replay, "moons_screens": screens,
                              "moons_first_screen_s": starting, "moons_running_s": running}, missed, args)


if __name__ == "__main__":
    sys.exit(main())
