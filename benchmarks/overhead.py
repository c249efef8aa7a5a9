"""What the monitor costs the training: schedtui against the same training as a bare PyTorch loop.

    .venv/bin/python benchmarks/overhead.py                     # both workloads, 5 rounds (~10 min on 2 cores)
    .venv/bin/python benchmarks/overhead.py --workload moons --rounds 3
    .venv/bin/python benchmarks/overhead.py --json /tmp/overhead.json

Four variants of one workload (`workloads.py`: the moons MLP, a small CIFAR-shaped
CNN), each in a fresh interpreter so none inherits another's warm caches or threads:

- `bare`: the training hand-written in plain PyTorch, on the main thread as a person
  would run it (`--bare-on-thread` runs it on a background thread, like the engine);
- `headless`: schedtui's engine with its event log, under the headless display
  (`run_headless`, stdout not a terminal: a line per epoch);
- `ui`: as `schedtui PRESET` runs on a terminal: the engine here with its control
  socket, its events folded on the main thread, and the live screen a child process
  (`control.own_screen.ScreenProcess`, the app of `schedtui attach --run-from-fd`) on
  a pseudo-terminal of `--size` that this process reads like a terminal would,
  refreshing at the CLI's default rate (`--refresh-hz`, default: the CLI's). The
  screen times each of its frames while the run trains: the app's own work for it
  (its `tick`: folding the new events, building the changed lines; median and 95th
  percentile) and its UI thread's CPU time per frame (that work plus Textual's painting).
- `attached`: the engine headless with its control socket (as a detached run), and
  the live screen in another process (`schedtui attach` in a pseudo-terminal of
  `--size`, attached before training starts): what the screen costs the trainer when
  only the socket's events reach it.

The variants run interleaved (bare, headless, ui, attached, then the next round in a rotated
order) and each reports its own training time, from the first update's start to the
end of training (the engine: `engine.start()` to the end of its thread, the end
checkpoint included; the bare loop saves model and optimizer at its end too). Start-up
(imports, data, model) is not counted: `startup.py` measures that. A ratio is bare
time / variant time in the same round (1.0 = free; higher is better), median over the
rounds. Every variant must train to the same weights (a hash of the parameters): the
table says so. Exits 1 when a target is missed (unless `--no-check`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fake_cifar, finish, machine_line, median, print_table  # noqa: E402

from schedtui.ui import LIVE_REFRESH_HZ  # noqa: E402

VARIANTS = ("bare", "headless", "ui", "attached")
TARGETS = {("moons", "headless"): 0.90, ("cnn", "headless"): 0.98, ("moons", "ui"): 0.85, ("cnn", "ui"): 0.95}


# ---- the child: one variant, one run ----------------------------------------------------------------
def child(args) -> None:
    import workloads

    out_dir = Path(args.result).parent
    cfg = workloads.config(args.workload, args, out_dir)
    data_dir, runs_dir = Path(args.data_dir), out_dir / f"runs-{args.child}"
    if args.child == "bare":
        res = workloads.run_bare(args.workload, cfg, data_dir, out_dir, on_thread=args.bare_on_thread)
    elif args.child == "headless":
        res = _headless(cfg, data_dir, runs_dir, args)
    elif args.child == "attached":
        res = _attached(cfg, data_dir, runs_dir, args)
    else:
        res = _ui(cfg, data_dir, runs_dir, args)
    Path(args.result).write_text(json.dumps(res))


def _headless(cfg, data_dir, runs_dir, args) -> dict:
    import io

    from rich.console import Console

    from schedtui.events.state import RunState
    from schedtui.headless import run_headless
    from schedtui.launch import start_run
    from workloads import Stopwatch, engine_result

    started = start_run(cfg, data_dir, runs_dir, start=False)
    clock = Stopwatch(started.engine)
    clock.start()
    run_headless(started.engine, started.events, RunState.from_header(started.header), Console(file=io.StringIO()),
                 refresh_hz=args.refresh_hz)
    clock.done.wait()
    return engine_result(clock, started.run_dir)


def _ui(cfg, data_dir, runs_dir, args) -> dict:
    """As `schedtui PRESET` runs on a terminal (`cli._run_ui`): the screen a child process (`ScreenProcess`) on a
    pseudo-terminal, up before the run is built; the run here with its control socket, its events folded on this
    main thread while the screen is up. The screen is `screen()` below (`schedtui attach --run-from-fd`'s app, its
    frames timed)."""
    from schedtui.control.own_screen import ScreenProcess
    from schedtui.events.state import RunState
    from schedtui.headless import fold
    from schedtui.launch import start_run
    from workloads import Stopwatch, engine_result

    size = tuple(int(n) for n in args.size.lower().split("x"))
    frames = Path(args.result).with_name("frames.json")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--screen", str(frames), "--refresh-hz", str(args.refresh_hz)]
    if args.profile_ui:
        cmd += ["--profile-ui", args.profile_ui]
    screen = _Screen(lambda **popen: ScreenProcess(args.refresh_hz, cmd=cmd, **popen), size)
    started = start_run(cfg, data_dir, runs_dir, start=False, control=True)
    screen.owner.started(started.run_dir)
    screen.wait_attached(started.control)
    state = RunState.from_header(started.header)
    clock = Stopwatch(started.engine)
    clock.start()
    while not clock.done.wait(1.0 / args.refresh_hz):
        fold(started.events, state)
    started.engine.join()
    drawn = screen.close_at_end()
    if not frames.exists():
        raise RuntimeError(f"the screen left no frame times:\n{screen.tail.decode('utf-8', 'replace')[-3000:]}")
    return {**engine_result(clock, started.run_dir), **json.loads(frames.read_text()), "terminal_kb": round(drawn / 1024, 1)}


def screen(args) -> None:
    """The `ui` variant's screen process: `schedtui attach --run-from-fd`'s app, each frame's own work (its
    `tick`) timed while the run trains, and this (UI) thread's CPU time over those frames; written to
    `args.screen` when it closes."""
    from schedtui.commands.attach import attach_app
    from schedtui.ui.owned import OwnedSource

    source = OwnedSource(args.run_from_fd)
    app = attach_app(source, args.refresh_hz, owned=True)
    tick, frame_s, cpu = app.tick, [], []
    prof = None
    if args.profile_ui:  # cProfile of the screen's frames while the run trains
        import cProfile

        prof = cProfile.Profile()

    def counted_tick() -> None:  # the app's timer calls self.tick: time the frames drawn while the run trains
        st = app.view.state
        training = st is not None and st.status == "running" and not source.ended
        if training and not cpu:
            cpu.append(time.thread_time())
            if prof is not None:
                prof.enable()
        t0 = time.perf_counter()
        tick()
        if training:
            frame_s.append(time.perf_counter() - t0)
            cpu[1:] = [time.thread_time()]

    app.tick = counted_tick
    app.run()
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile_ui)
    source.close()
    frame_ms = sorted(t * 1e3 for t in frame_s)
    ui_cpu = cpu[-1] - cpu[0] if len(cpu) == 2 else None
    Path(args.screen).write_text(json.dumps({
        "frames": len(frame_ms), "frame_ms_median": round(median(frame_ms), 3) if frame_ms else None,
        "frame_ms_p95": round(frame_ms[int(0.95 * (len(frame_ms) - 1))], 3) if frame_ms else None,
        "ui_cpu_ms_per_frame": round(ui_cpu * 1e3 / len(frame_ms), 3) if ui_cpu is not None and frame_ms else None}))


def _attached(cfg, data_dir, runs_dir, args) -> dict:
    """Headless with the control socket, and `schedtui attach` in a pseudo-terminal (another process) watching."""
    import io

    from rich.console import Console

    from schedtui.events.state import RunState
    from schedtui.headless import run_headless
    from schedtui.launch import start_run
    from workloads import Stopwatch, engine_result

    started = start_run(cfg, data_dir, runs_dir, start=False, control=True)
    size = tuple(int(n) for n in args.size.lower().split("x"))
    cmd = [sys.executable, "-m", "schedtui", "attach", str(started.run_dir.absolute()), "--refresh-hz", str(args.refresh_hz)]
    screen = _Screen(lambda **popen: subprocess.Popen(cmd, **popen), size)
    screen.wait_attached(started.control)
    clock = Stopwatch(started.engine)
    clock.start()
    run_headless(started.engine, started.events, RunState.from_header(started.header), Console(file=io.StringIO()),
                 refresh_hz=args.refresh_hz)
    clock.done.wait()
    drawn = screen.close_at_end()
    return {**engine_result(clock, started.run_dir), "terminal_kb": round(drawn / 1024, 1)}


class _Screen:
    """A command on a pseudo-terminal of `size` whose output is read (and counted) as a terminal would."""

    def __init__(self, spawn, size: tuple[int, int]):
        """`spawn(**popen)`: a `subprocess.Popen` (or an owner of one, as `.proc`) of the screen, given its terminal."""
        import fcntl
        import pty
        import struct
        import termios

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(size[0]), "LINES": str(size[1])}
        self.owner = spawn(stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        self.proc = getattr(self.owner, "proc", self.owner)
        os.close(slave)
        self.n, self.tail = 0, b""
        self.seen = {b"RUNNING": False, b"DONE": False}  # the status line's states, once drawn
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            self.n += len(chunk)
            window = self.tail[-16:] + chunk
            for k in self.seen:
                self.seen[k] = self.seen[k] or k in window
            self.tail = (self.tail + chunk)[-4000:]

    def wait_attached(self, server) -> None:
        """Until the screen is attached to the run (`server`, its control socket) and drawing, before training."""
        t0 = time.monotonic()
        while not self.seen[b"RUNNING"] or server.screens < 1:
            if time.monotonic() - t0 > 60 or self.proc.poll() is not None:
                raise RuntimeError(f"the screen did not come up:\n{self.tail.decode('utf-8', 'replace')[-3000:]}")
            time.sleep(0.05)
        time.sleep(0.5)  # its history read and its event stream asked for

    def close_at_end(self) -> int:
        """The run has ended: once the screen has drawn its end (DONE), close it; the bytes it drew."""
        t0 = time.monotonic()
        while not self.seen[b"DONE"] and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        followed = self.seen[b"DONE"]
        drawn = self.close()
        if not followed:
            raise RuntimeError(f"the screen did not show the run's end:\n{self.tail.decode('utf-8', 'replace')[-3000:]}")
        return drawn

    def close(self) -> int:
        """q (the screen detaches, or quits after the run's end), wait for it; the bytes it drew."""
        os.write(self.master, b"q")
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        os.close(self.master)
        return self.n


# ---- the parent: rounds of children ------------------------------------------------------------------
def _child_cmd(variant: str, workload: str, args, data_dir: Path, result: Path) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--workload", workload,
           "--data-dir", str(data_dir), "--result", str(result), "--epochs", str(args.epochs),
           "--cnn-epochs", str(args.cnn_epochs), "--cnn-width", str(args.cnn_width), "--cnn-batch", str(args.cnn_batch),
           "--refresh-hz", str(args.refresh_hz), "--size", f"{args.size[0]}x{args.size[1]}"]
    return cmd + (["--bare-on-thread"] if args.bare_on_thread else [])


def run_variant(variant: str, workload: str, args, data_dir: Path, tmp: Path, i: int) -> dict:
    result = tmp / f"{workload}-{variant}-{i}" / "result.json"
    result.parent.mkdir(parents=True)
    cmd = _child_cmd(variant, workload, args, data_dir, result)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=args.timeout)
    if p.returncode != 0 or not result.exists():
        raise RuntimeError(f"{workload}/{variant} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(result.read_text())


def measure(args) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="schedtui-overhead-") as tmp_:
        tmp = Path(tmp_)
        data_dir = tmp / "data"
        if "cnn" in args.workload:
            fake_cifar(data_dir, args.cnn_images, args.cnn_test)
        for wl in args.workload:
            runs: dict = {v: [] for v in args.variants}
            for r in range(args.rounds):
                order = list(args.variants[r % len(args.variants):]) + list(args.variants[:r % len(args.variants)])
                for v in order:
                    res = run_variant(v, wl, args, data_dir, tmp, r)
                    runs[v].append(res)
                    print(f"  {wl:5} round {r + 1}/{args.rounds} {v:8} {res['seconds']:.3f} s", file=sys.stderr, flush=True)
            out[wl] = summarize(wl, runs)
    return out


def summarize(wl: str, runs: dict) -> dict:
    times = {v: [r["seconds"] for r in rs] for v, rs in runs.items()}
    ratios = {}
    if "bare" in times:
        for v in times:
            if v != "bare":
                ratios[v] = median([b / t for b, t in zip(times["bare"], times[v])])
    weights = {r["weights"] for rs in runs.values() for r in rs}
    first = {v: rs[0] for v, rs in runs.items()}
    return {"steps": next(iter(first.values()))["steps"], "seconds": times, "median_s": {v: median(t) for v, t in times.items()},
            "ratio": ratios, "same_weights": len(weights) == 1, "final_loss": {v: r["final_loss"] for v, r in first.items()},
            "ui_frames": [r.get("frames") for r in runs.get("ui", [])], "ui_terminal_kb": [r.get("terminal_kb") for r in runs.get("ui", [])],
            "attached_terminal_kb": [r.get("terminal_kb") for r in runs.get("attached", [])],
            "cpu_s": {v: [r.get("cpu_s") for r in rs] for v, rs in runs.items()},  # the trainer process's, by thread
            "ui_frame_ms_median": [r.get("frame_ms_median") for r in runs.get("ui", [])],
            "ui_frame_ms_p95": [r.get("frame_ms_p95") for r in runs.get("ui", [])],
            "ui_cpu_ms_per_frame": [r.get("ui_cpu_ms_per_frame") for r in runs.get("ui", [])],
            "targets": {v: TARGETS[(wl, v)] for v in ratios if (wl, v) in TARGETS}}


def report(results: dict, args) -> list[str]:
    rows, missed = [], []
    for wl, r in results.items():
        for v in args.variants:
            ratio = r["ratio"].get(v)
            target = r["targets"].get(v)
            met = "" if target is None or ratio is None else ("met" if ratio >= target else "MISSED")
            if met == "MISSED":
                missed.append(f"{wl}/{v}: {ratio:.3f} < {target}")
            per_step = r["median_s"][v] / r["steps"] * 1e3
            rows.append([wl, v, r["steps"], f"{r['median_s'][v]:.3f}", f"{per_step:.3f}",
                         "1.000" if v == "bare" else f"{ratio:.3f}", f">= {target}" if target else "", met,
                         "yes" if r["same_weights"] else "NO"])
    print_table(["workload", "variant", "steps", "median s", "ms/step", "vs bare", "target", "", "same weights"], rows,
                title=f"overhead: {args.rounds} interleaved rounds; {machine_line()}")
    frames = []
    for wl, r in results.items():
        ticks = [x for x in r.get("ui_frame_ms_median") or [] if x is not None]
        if ticks:  # a run too short to draw a frame while it trained has none
            p95 = [x for x in r["ui_frame_ms_p95"] if x is not None]
            cpu = [x for x in r["ui_cpu_ms_per_frame"] if x is not None]
            frames.append([wl, f"{median(ticks):.2f}", f"{median(p95):.2f}", f"{median(cpu):.2f}" if cpu else "-",
                           f"{min(ticks):.2f}-{max(ticks):.2f}"])
    if frames:
        print()
        print_table(["workload", "frame ms (median)", "frame ms (p95)", "UI thread CPU ms/frame", "frame ms range over rounds"],
                    frames, title=f"the live screen's frames while training ({args.refresh_hz:g} Hz, {args.size[0]}x{args.size[1]})")
    return missed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", action="append", choices=("moons", "cnn"), help="repeatable; default both")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of bare,headless,ui,attached")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=300, help="moons epochs (25 updates each; default 300)")
    ap.add_argument("--cnn-epochs", type=int, default=4, help="CNN epochs (50 updates each at the defaults; default 4)")
    ap.add_argument("--cnn-width", type=int, default=8, help="ResNet-9 width (the preset's is 64)")
    ap.add_argument("--cnn-batch", type=int, default=64)
    ap.add_argument("--cnn-images", type=int, default=3200, help="training images (random, CIFAR format)")
    ap.add_argument("--cnn-test", type=int, default=500)
    ap.add_argument("--refresh-hz", type=float, default=LIVE_REFRESH_HZ, help=f"the screen's refresh rate (default: the CLI's, {LIVE_REFRESH_HZ:g})")
    ap.add_argument("--size", default="120x40", help="the pseudo-terminal's COLSxROWS")
    ap.add_argument("--bare-on-thread", action="store_true", help="run the bare loop on a background thread")
    ap.add_argument("--timeout", type=float, default=900, help="seconds for one run")
    ap.add_argument("--json", help="where to write the results (default benchmarks/results/overhead.json)")
    ap.add_argument("--no-check", action="store_true", help="exit 0 even when a target is missed")
    ap.add_argument("--profile-ui", metavar="PATH", help="(with --child ui) write a cProfile of the screen's frames while training")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--screen", help=argparse.SUPPRESS)  # the ui variant's screen process: where its frame times go
    ap.add_argument("--run-from-fd", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.screen:
        screen(args)
        return 0
    if args.child:
        args.workload = args.workload[0]
        child(args)
        return 0
    args.workload = args.workload or ["moons", "cnn"]
    args.variants = tuple(v for v in args.variants.split(",") if v)
    if not set(args.variants) <= set(VARIANTS) or "bare" not in args.variants:
        ap.error("--variants: a subset of bare,headless,ui,attached that includes bare")
    cols, rows = args.size.lower().split("x")
    args.size = (int(cols), int(rows))
    t0 = time.perf_counter()
    results = measure(args)
    missed = report(results, args)
    settings = {k: v for k, v in vars(args).items() if k not in ("child", "data_dir", "result")}
    return finish("overhead", {"settings": settings, "workloads": results, "wall_s": round(time.perf_counter() - t0, 1)},
                  missed, args)


if __name__ == "__main__":
    sys.exit(main())
