"""The `schedtui` command: argument parsing and dispatch.

Imports only the standard library and the pure config package at module level;
torch, the engine and rich are imported when a run starts, so `schedtui --help`
and `schedtui presets` answer at once. Every bad input is one line on stderr and
exit status 2, with nothing started.

On a terminal the run trains in this process and its live screen is drawn by a
child process attached to the run's control socket (`control.own_screen`), up
before torch has loaded here: the screen's frames never hold this process's GIL.
This process's output goes to RUN_DIR/output.log while the screen is up.

While a run goes, SIGINT and SIGTERM stop it at the next step boundary with
status `interrupted` (a checkpoint and the `end` event are written, so
`schedtui resume` continues it) and the process exits with 128 + the signal
number: 130, 143 (`schedtui.interrupts`). SIGHUP (the terminal went away)
detaches: the screen closes and the run goes on headless, its output in
RUN_DIR/output.log, its control socket open (`schedtui attach`, `ctl`). `--detach`
starts a run in the background (`control.background`). A reader that goes away
(`schedtui replay RUN | head`) ends the command quietly with status 141, as
SIGPIPE ends other Unix tools. Strings that came from a preset, a log or user
code are printed through `schedtui.safe_text` (control characters made visible,
Rich markup escaped).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from schedtui import __version__
from schedtui.errors import UserError
from schedtui.safe_text import markup, visible
from schedtui.ui import LIVE_REFRESH_HZ

DEFAULT_DATA_DIR = os.environ.get("SCHEDTUI_DATA", str(Path("~/.cache/schedtui/data").expanduser()))
EPILOG = """\
examples:
  schedtui                                  the default preset (moons), a few seconds on a CPU
  schedtui cifar10 --data-dir ~/data        CIFAR-10, ResNet-9, one-cycle lr (downloads the data if missing)
  schedtui moons --headless --epochs 3
  schedtui moons --set schedules.lr.kind=CosineAnnealingLR --set optimizer.lr=0.05
  schedtui my_preset.toml --set "schedules.dropout={kind='milestones', values={10=0.4, 50=0.2}}"
  schedtui presets                          list the presets
  schedtui run mypkg.train:experiment       your own model, data and loss (a factory; see README)

review and reuse a run (each has --help):
  schedtui replay RUN_DIR|LOG [--follow]    review a run on the same screen, read-only (no torch)
  schedtui rerun LOG [--until STEP]         re-execute a run with its edits at their exact steps
  schedtui diff LOG_A LOG_B                 the first step where two runs differ, and how
  schedtui export LOG --csv F | --preset F  per-step CSV, or a preset with the run's edits folded in
  schedtui resume RUN_DIR [--from CKPT]     continue a stopped, interrupted or killed run from its checkpoint

a run outlives its screen (a dropped SSH session detaches it; --detach starts one in the background):
  schedtui attach [RUN_DIR]                 the live screen of a running run; q detaches
  schedtui ctl RUN_DIR COMMAND              pause, resume, stop, set KNOB VALUE, status, ... from any shell
  schedtui ps [RUNS_DIR]                    the runs there: running or not, step, status, screens

A run checkpoints when it stops (q, Ctrl-C, SIGTERM, ctl stop), on `c`, and every
--checkpoint-every N epochs, in RUN_DIR/checkpoints/.

Each run writes RUNS_DIR/<preset>-<timestamp>/events.jsonl (the event log) and config.toml.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"{message} (see schedtui --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="schedtui",
        description="Train a PyTorch model while watching and steering every scheduled hyperparameter.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("preset", nargs="?", default="moons", help="a preset name (see `schedtui presets`) or a .toml file; default: moons")
    add_preset_options(p)
    add_run_options(p, "the preset's, normally auto")
    p.add_argument("--version", action="version", version=f"schedtui {__version__}")
    return p


def add_preset_options(p: argparse.ArgumentParser) -> None:
    """The options that change a preset's values (train, run); `preset_overrides` turns them into --set items."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset value; dotted key, TOML value (repeatable), e.g. optimizer.lr=0.05")
    p.add_argument("--epochs", type=int, metavar="N", help="number of epochs (same as --set epochs=N)")
    p.add_argument("--seed", type=int, metavar="N", help="random seed (same as --set seed=N)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="checkpoint every N epochs (same as --set engine.checkpoint_every=N; 0 = only on c and at the end)")


def preset_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    for key in ("epochs", "seed", "device"):
        if getattr(args, key) is not None:
            overrides.append(f"{key}={getattr(args, key)!r}".replace("'", '"'))
    if args.checkpoint_every is not None:
        overrides.append(f"engine.checkpoint_every={args.checkpoint_every}")
    return overrides


def add_run_options(p: argparse.ArgumentParser, device_default: str, runs_dir: bool = True) -> None:
    """The options of every command that starts a run (train, rerun; resume has no --runs-dir and
    defaults --data-dir to the run's own)."""
    p.add_argument("--headless", action="store_true", help="no full-screen UI: Rich progress and a summary (the default when stdout is not a terminal)")
    p.add_argument("--refresh-hz", type=_refresh_hz, default=LIVE_REFRESH_HZ, metavar="HZ",
                   help=f"screen refreshes per second (default: {LIVE_REFRESH_HZ:g}; never per training step)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help=f"training device (default: {device_default})")
    p.add_argument("--detach", action="store_true",
                   help="start the run in the background (headless, output in RUN_DIR/output.log) and print how to attach")
    p.add_argument("--nproc-per-node", type=_nproc, metavar="N",
                   help="train data-parallel on N processes of this machine (torch's launcher, torchrun), the screen "
                        "attached to rank 0")
    if runs_dir:
        p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, metavar="DIR", help=f"where datasets live or are downloaded to (default: {DEFAULT_DATA_DIR}; env SCHEDTUI_DATA)")
        p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where run directories are created (default: ./runs)")
    else:
        p.add_argument("--data-dir", default=None, metavar="DIR", help="where datasets live (default: where the run found them)")
        p.set_defaults(runs_dir=None)


def _nproc(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= 1024:
        raise argparse.ArgumentTypeError(f"{n} is out of range [1, 1024]")
    return n


def _refresh_hz(text: str) -> float:
    try:
        hz = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.5 <= hz <= 60:  # nan fails this too
        raise argparse.ArgumentTypeError(f"{hz:g} is out of range [0.5, 60]")
    return hz


def run(cfg: dict, args: argparse.Namespace, **launch) -> int:
    """Start `cfg` under the UI, or headless when asked or when there is no terminal; `launch` goes to start_run.
    SIGINT and SIGTERM stop the run as `interrupted`, SIGHUP detaches (see the module docstring)."""
    from schedtui.interrupts import Interrupts

    if getattr(args, "nproc_per_node", None) and args.nproc_per_node > 1 and not _in_torchrun():
        from schedtui.control.background import start_job

        return start_job(_argv, args.nproc_per_node, attach=not args.detach and not args.headless
                         and sys.stdout.isatty() and sys.stdin.isatty())
    if args.detach:
        from schedtui.control.background import start_detached

        return start_detached(_argv)
    launch["control"] = True  # every run the command starts has a control socket (attach, ctl, ps): rank 0's
    torchrun = _in_torchrun()
    try:
        with Interrupts() as interrupts:
            if torchrun or args.headless or not (sys.stdout.isatty() and sys.stdin.isatty()):
                return _run_headless(cfg, args, interrupts, **launch)  # under torchrun: rank 0 prints, the rest log
            return _run_ui(cfg, args, interrupts, **launch)
    finally:
        if torchrun:
            from schedtui.engine import ddp

            ddp.teardown()


def _in_torchrun() -> bool:
    """Started by torchrun with more than one process (no torch import to find out)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def cmd_presets() -> int:
    from schedtui.config import list_presets

    presets = {visible(name): visible(desc) for name, desc in list_presets().items()}  # preset files are data
    width = max(map(len, presets), default=0)
    for name, desc in presets.items():
        print(f"{name:<{width}}  {desc}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from schedtui.config import load_config

    cfg, _ = load_config(args.preset, preset_overrides(args))
    return run(cfg, args)


def _run_headless(cfg: dict, args: argparse.Namespace, interrupts, **launch) -> int:
    from rich.console import Console

    from schedtui.control import background
    from schedtui.events.state import RunState
    from schedtui.headless import run_headless
    from schedtui.launch import start_run

    console = Console(emoji=False)
    with console.status(f"preparing {markup(cfg['name'])} (loading torch, data and model)..."):
        started = start_run(cfg, args.data_dir, args.runs_dir, start=False, **launch)
    engine = started.engine
    background.started(started.run_dir)  # --detach: from here on the output goes to RUN_DIR/output.log
    interrupts.on_hangup = lambda: background.hung_up(engine, started.run_dir, interrupts.tty_fds)
    if interrupts.hung_up:  # the terminal went away while the run was being built
        background.hung_up(engine, started.run_dir, interrupts.tty_fds)
    device = cfg['device'] if 'resume' in launch else started.header['device']
    console.print(f"schedtui {markup(cfg['name'])} on {markup(device)}: "
                  f"{cfg['epochs']} epochs x {started.header['steps_per_epoch']} steps")
    console.print(f"log: {markup(started.run_dir / 'events.jsonl')}", soft_wrap=True)
    if "source" in started.header:
        console.print(f"rerun of {markup(started.header['source']['log'])}", soft_wrap=True)
    if launch.get("resume") is not None:
        console.print(f"resumed from {markup(launch['resume'].checkpoint)} at step {engine.step}", soft_wrap=True)
    if started.control is not None:
        console.print(f"steer it from another shell: schedtui attach {markup(started.run_dir)}  (or schedtui ctl)",
                      soft_wrap=True)
    interrupts.on_signal = lambda signum: engine.send("stop", status="interrupted")
    if interrupts.signum is not None:  # a SIGTERM while the run was being built
        engine.send("stop", status="interrupted")
    engine.start()
    state = run_headless(engine, started.events, RunState.from_header(started.header), console, args.refresh_hz,
                         interrupts)
    status = engine.status  # (a data-parallel rank other than 0 has no events: its engine knows)
    if status in ("stopped", "interrupted"):
        console.print(f"continue it with: schedtui resume {markup(started.run_dir)}", soft_wrap=True)
    if interrupts.exit_code is not None:
        return interrupts.exit_code
    if status == "crashed" and state.user_error:  # the factory's code handed over something unusable
        raise UserError(state.error)
    return {"completed": 0, "stopped": 0, "interrupted": 130}.get(status, 1)


def _run_ui(cfg: dict, args: argparse.Namespace, interrupts, **launch) -> int:
    """The run in this process, its live screen drawn by a child process (`control.own_screen`) that is up at once,
    on this terminal, while torch loads here. This process's output goes to RUN_DIR/output.log meanwhile, each
    line with its step (the screen's `o` shows it). The screen closing decides the rest: detached (q then d) or
    failed, the run goes on here headless; closed otherwise while the run goes (q during start-up), it stops."""
    import time

    from schedtui.capture import OutputCapture
    from schedtui.control import background, own_screen
    from schedtui.events.state import RunState
    from schedtui.headless import fold
    from schedtui.interrupts import detach_terminal
    from schedtui.launch import start_run

    screen = own_screen.ScreenProcess(args.refresh_hz)
    box: dict = {}
    capture = OutputCapture(lambda: box["run_dir"] / background.OUTPUT if "run_dir" in box else None,
                            lambda: box["engine"].step if "engine" in box else 0)

    def close_screen(timeout: float = 10.0) -> None:  # the terminal is the screen's until it exits, then ours
        screen.wait(timeout)
        capture.close()
        if interrupts.hung_up:  # (the capture put back descriptors of a terminal that is gone)
            detach_terminal(interrupts.tty_fds)

    try:
        started = start_run(cfg, args.data_dir, args.runs_dir, start=False, **launch)
    except BaseException as e:
        close_screen()
        if isinstance(e, (UserError, KeyboardInterrupt)):
            raise
        print(f"schedtui: the run could not start: {type(e).__name__}: {visible(e)}", file=sys.stderr)
        return 1
    engine, run_dir, events = started.engine, started.run_dir, started.events
    box.update(engine=engine, run_dir=run_dir)
    state = RunState.from_header(started.header)
    interrupts.on_signal = lambda signum: engine.send("stop", status="interrupted")
    if interrupts.signum is not None:  # a SIGTERM while the run was being built
        engine.send("stop", status="interrupted")
    if started.control is None:  # no socket for a screen to attach to (the log's warning says why): headless here
        from rich.console import Console

        from schedtui.headless import run_headless

        close_screen()
        engine.start()
        run_headless(engine, events, state, Console(emoji=False), args.refresh_hz, interrupts)
        code = None
    else:
        screen.started(run_dir)
        engine.start()
        while screen.exit_code is None and not interrupts.hung_up and interrupts.signum is None:
            fold(events, state)  # kept current (after a detach the headless display goes on from it), queue bounded
            time.sleep(1.0 / args.refresh_hz)
        code = screen.exit_code
        close_screen(timeout=2.0 if interrupts.hung_up else 10.0)
        fold(events, state)
    if engine.running and interrupts.signum is None and (code != own_screen.QUIT or interrupts.hung_up):
        if interrupts.hung_up:
            reason = "hangup"
        else:
            reason, said = own_screen.closed_while_running(
                code, run_dir, "the run", "ctrl+z, then bg (closing the terminal does not stop the run)")
            print(said, end="", flush=True)
        background.continue_headless(engine, events, state, run_dir, args.refresh_hz, interrupts, reason)
    if engine.running:  # closed while the run went (q during start-up, ctrl+q), or a signal: it stops
        engine.send("stop", status="interrupted" if interrupts.signum is not None else "stopped")
        engine.join()
    print(f"schedtui: run {engine.status}; log: {visible(run_dir / 'events.jsonl')}")
    if engine.status in ("stopped", "interrupted"):
        print(f"continue it with: schedtui resume {visible(run_dir)}")
    if interrupts.exit_code is not None:
        return interrupts.exit_code
    fold(events, state)
    if engine.status == "crashed" and state.user_error:  # the factory's code handed over something unusable
        raise UserError(state.error)
    return 0 if engine.status in ("completed", "stopped") else 1


SUBCOMMANDS = ("run", "replay", "rerun", "diff", "export", "resume", "attach", "ctl", "ps")  # modules in schedtui.commands
_argv: list[str] = []  # this invocation's arguments (`--detach` starts the same command again in the background)


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["presets"]:
        if len(argv) > 1:
            raise UserError("`schedtui presets` takes no arguments")
        return cmd_presets()
    if argv[:1] and argv[0] in SUBCOMMANDS:
        import importlib

        return importlib.import_module(f"schedtui.commands.{argv[0]}").main(argv[1:])
    return cmd_train(build_parser().parse_args(argv))


def _stdout_gone() -> int:
    """The reader of stdout went away (`| head`): later writes (the exit's flush) go nowhere; 128 + SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file behind sys.stdout
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    global _argv
    argv = sys.argv[1:] if argv is None else argv
    _argv = list(argv)
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # here, so that a closed pipe is noticed now, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return _stdout_gone()
    except UserError as e:  # the message may quote a preset or a log: shown, never obeyed
        print(f"schedtui: {visible(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print("schedtui: interrupted", file=sys.stderr)
        return getattr(e, "exit_code", 130)
