"""`schedtui attach [RUN]`: the live screen of a run that goes on in another process.

Finds the run (a run directory, its name or run id under --runs-dir; none: the
newest running run there), connects to its control socket as `attach`, and opens
the same screen as `schedtui` itself (`ui.app.TrainApp`) on a `ui.remote.RemoteSource`:
the run's history from its log, then live. Every key steers the run through the
socket (logged with `by: "attach"`). `q` asks: detach (the screen closes and the
run goes on), stop (the run checkpoints and ends), or cancel; the run stops only
when asked to (there, or `schedtui ctl RUN stop`).
No torch: it opens at once. A run that is not going (ended, killed, unknown) is a
one-line error, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from schedtui.commands import command_parser
from schedtui.control import runs
from schedtui.errors import UserError
from schedtui.safe_text import visible

EPILOG = """\
q asks: detach (the run goes on), stop the run, or cancel. From a script: schedtui ctl RUN stop

examples:
  schedtui attach                                   the newest running run under ./runs
  schedtui attach runs/cifar10-20261121-193000
  schedtui attach 3f2a9c0d1e4b                      a run id (see schedtui ps)
"""


def build_parser():
    from schedtui.ui import LIVE_REFRESH_HZ

    p = command_parser("attach", "Open the live screen of a run going on in another process; q detaches (or stops it).", EPILOG)
    p.add_argument("run", nargs="?", metavar="RUN", help="the run's directory, name or run id (default: the newest running run)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where runs are looked up (default: ./runs)")
    p.add_argument("--refresh-hz", type=float, default=LIVE_REFRESH_HZ, metavar="HZ",
                   help=f"screen refreshes per second (default: {LIVE_REFRESH_HZ:g})")
    p.add_argument("--run-from-fd", type=int, help=argparse.SUPPRESS)  # the screen of `schedtui PRESET` (own_screen)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 0.5 <= args.refresh_hz <= 60:
        raise UserError(f"--refresh-hz: {args.refresh_hz:g} is out of range [0.5, 60]")
    if args.run_from_fd is not None:
        return _owned(args)
    runs_dir = Path(args.runs_dir)
    run_dir = runs.newest_running(runs_dir) if args.run is None else runs.resolve(args.run, runs_dir)
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        raise UserError(f"attach needs a terminal; from a script use: schedtui ctl {run_dir} status")
    conn, _ = runs.connect(run_dir, "attach")
    from schedtui.ui.remote import RemoteSource

    source = RemoteSource(conn, run_dir)
    app, failed = _show(source, args.refresh_hz)
    if failed:  # the run goes on
        return failed
    if source.ended:
        print(f"schedtui: the run has ended; its log: {visible(run_dir / 'events.jsonl')}")
    else:
        print(f"schedtui: detached; the run goes on. Attach again: schedtui attach {visible(run_dir)}")
    return 0


def _owned(args) -> int:
    """The screen of a run that the process which started this one is starting (`control.own_screen`): the
    exit status says what the person chose (detach, or close while the run goes); that process says the rest."""
    from schedtui.control.own_screen import DETACHED, QUIT
    from schedtui.ui.owned import OwnedSource

    if args.run is not None:
        raise UserError("attach: a run and --run-from-fd exclude each other")
    source = OwnedSource(args.run_from_fd)
    app, failed = _show(source, args.refresh_hz, owned=True)
    if failed:
        return failed
    return DETACHED if app.detached or source.ended or source.dismissed else QUIT


def _show(source, refresh_hz: float, owned: bool = False):
    """The screen over `source` until it closes: (the app, an exit status if it failed, else 0). A run it could not
    attach to is one line; any other failure Textual has shown."""
    app = attach_app(source, refresh_hz, owned)
    try:
        app.run()
    finally:
        source.close()
    if app.startup_error is not None:
        print(f"schedtui: {visible(app.startup_error)}", file=sys.stderr)
        return app, app.return_code or 1
    return app, app.return_code or 0


def attach_app(source, refresh_hz: float, owned: bool = False):
    """The live screen over `source` (`q`: detach, stop the run, or cancel); `owned`: the screen of a run its
    parent process started (no "attached" word)."""
    import schedtui.ui
    from schedtui.ui.app import TrainApp

    class AttachApp(TrainApp):
        CSS_PATH = str(Path(schedtui.ui.__file__).parent / TrainApp.CSS_PATH)  # (relative paths are to this module)

        def mounted(self) -> None:
            super().mounted()
            if not owned:
                self.notify("attached: q detaches (the run goes on) or stops the run", timeout=8)

    return AttachApp(source, refresh_hz=refresh_hz)
