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
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 0.5 <= args.refresh_hz <= 60:
        raise UserError(f"--refresh-hz: {args.refresh_hz:g} is out of range [0.5, 60]")
    runs_dir = Path(args.runs_dir)
    run_dir = runs.newest_running(runs_dir) if args.run is None else runs.resolve(args.run, runs_dir)
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        raise UserError(f"attach needs a terminal; from a script use: schedtui ctl {run_dir} status")
    conn, _ = runs.connect(run_dir, "attach")
    from schedtui.ui.remote import RemoteSource

    source = RemoteSource(conn, run_dir)
    app = attach_app(source, args.refresh_hz)
    try:
        app.run()
    finally:
        source.close()
    if app.startup_error is not None:
        print(f"schedtui: {visible(app.startup_error)}", file=sys.stderr)
        return app.return_code or 1
    if app.return_code:  # the screen failed (Textual has shown why); the run goes on
        return app.return_code
    if source.ended:
        print(f"schedtui: the run has ended; its log: {visible(run_dir / 'events.jsonl')}")
    else:
        print(f"schedtui: detached; the run goes on. Attach again: schedtui attach {visible(run_dir)}")
    return 0


def attach_app(source, refresh_hz: float):
    """The live screen over `source` (`q`: detach, stop the run, or cancel)."""
    import schedtui.ui
    from schedtui.ui.app import TrainApp

    class AttachApp(TrainApp):
        CSS_PATH = str(Path(schedtui.ui.__file__).parent / TrainApp.CSS_PATH)  # (relative paths are to this module)

        def mounted(self) -> None:
            super().mounted()
            self.notify("attached: q detaches (the run goes on) or stops the run", timeout=8)

    return AttachApp(source, refresh_hz=refresh_hz)
