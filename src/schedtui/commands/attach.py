"""`schedtui attach [RUN]`: the live screen of a run that goes on in another process.

Finds the run (a run directory, its name or run id under --runs-dir; none: the
newest running run there), connects to its control socket as `attach`, and opens
the same screen as `schedtui` itself (`ui.app.TrainApp`) on a `ui.remote.RemoteSource`:
the run's history from its log, then live. Every key steers the run through the
socket (logged with `by: "attach"`). `q` detaches: the screen closes and the run
goes on; only an explicit stop (ctrl+p "Stop the run", or `schedtui ctl RUN stop`) stops it.
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
q detaches (the run goes on). Stop the run with: schedtui ctl RUN stop

examples:
  schedtui attach                                   the newest running run under ./runs
  schedtui attach runs/cifar10-20261121-193000
  schedtui attach 3f2a9c0d1e4b                      a run id (see schedtui ps)
"""


def build_parser():
    from schedtui.ui import LIVE_REFRESH_HZ

    p = command_parser("attach", "Open the live screen of a run going on in another process; q detaches.", EPILOG)
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
        print(f"schedtui: the run has ended; its log: {run_dir / 'events.jsonl'}")
    else:
        print(f"schedtui: detached; the run goes on. Attach again: schedtui attach {run_dir}")
    return 0


def attach_app(source, refresh_hz: float):
    """The live screen over `source`, where q detaches."""
    from textual.app import SystemCommand
    from textual.binding import Binding

    import schedtui.ui
    from schedtui.ui.app import TrainApp
    from schedtui.ui.screens import ConfirmQuit

    class AttachApp(TrainApp):
        CSS_PATH = str(Path(schedtui.ui.__file__).parent / TrainApp.CSS_PATH)  # (relative paths are to this module)
        BINDINGS = [Binding("q", "quit_run", "Detach")]

        def mounted(self) -> None:
            super().mounted()
            self.notify("attached: q detaches (the run goes on); ctrl+p \"Stop the run\" stops it", timeout=8)

        def action_stop_run(self) -> None:
            """Stop the run (it checkpoints and ends), after asking; the screen closes once it has ended."""
            if self.source.ended:
                self.notify("the run has ended already", severity="warning")
                return

            def answered(yes: bool | None) -> None:
                if yes:
                    self.quitting = True
                    self.status_bar.note = "stopping..."
                    self.source.send("stop")

            self.push_screen(ConfirmQuit(), answered)

        def get_system_commands(self, screen):
            yield SystemCommand("Stop the run", "Checkpoint and end the run (asks first); q only detaches", self.action_stop_run)
            yield SystemCommand("Detach", "Close this screen; the run goes on", self.exit)
            for c in super().get_system_commands(screen):
                if c.title != "Quit":  # TrainApp's quit stops the run; here q detaches
                    yield c

    return AttachApp(source, refresh_hz=refresh_hz)
