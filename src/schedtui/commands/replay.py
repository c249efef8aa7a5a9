"""`schedtui replay LOG|RUN_DIR`: review a recorded run on the main screen, read-only.

Never imports torch, so it opens at once. In a terminal it runs the replay app
(`ui.replay_app`); with no terminal (a pipe, a script) it prints a summary of the
run: its header and status, the facts of the one fold (`Timeline.state`) in the
rows the headless summary prints (`events.summary`), every edit and other event
of note, and what was skipped. A file that is not a readable log at all (missing,
empty, binary, another format, a newer version) is a one-line error; a damaged
log shows what it can and says what it skipped. Every line of the summary is
printed with control characters made visible (`safe_text.visible`): a log's
strings reach no terminal raw. textual is imported only for the app.
"""

from __future__ import annotations

import sys

from schedtui.commands import command_parser
from schedtui.errors import UserError
from schedtui.events.summary import summary_rows
from schedtui.events.timeline import Timeline
from schedtui.safe_text import visible
from schedtui.ui.view import event_line

EPILOG = """\
keys: left/right a step, pgup/pgdn an epoch, home/end, n/N next/previous event,
space play/pause, +/- speed (1x, 10x, 100x), t real time or compressed, ? help, q quit.

examples:
  schedtui replay runs/cifar10-20261121-193000
  schedtui replay runs/cifar10-20261121-193000/events.jsonl --start 1200
  schedtui replay runs/moons-20261121-193000 --follow     a run still going, like tail -f
"""


def build_parser():
    p = command_parser("replay", "Review a recorded run on the same screen, read-only: a timeline cursor, playback, every edit.", EPILOG)
    p.add_argument("log", metavar="LOG", help="a run's events.jsonl, or its run directory")
    p.add_argument("--follow", action="store_true", help="keep reading a log that is still being written (like tail -f)")
    p.add_argument("--start", type=int, metavar="STEP", help="open with the cursor at this step (default: the end)")
    p.add_argument("--refresh-hz", type=float, default=10.0, metavar="HZ", help="screen refreshes per second (default: 10)")
    return p


def _event_line(ev: dict) -> str | None:
    """The event list's line for `ev`; a damaged event (an edit without its op, a message that is a list) is
    still listed, by its step and type."""
    try:
        line = event_line(ev)
    except (KeyError, TypeError, ValueError, AttributeError):
        return f"{ev.get('step'):>6} {ev.get('type')} (a damaged event)"
    return None if line is None else line[1]


def summary(tl: Timeline) -> list[str]:
    """The run in a few lines, for a replay without a terminal: the facts of the one fold (the rows of the
    headless summary), then the events of note; every line shown with `visible`."""
    st, h = tl.state, tl.header
    status = st.status if st.end is not None else "no end event (still running, or killed)"
    lines = [f"run {h.get('run_id')} ({h.get('preset')}) on {h.get('device')}: {status} at step {st.step}"
             f" of {st.total_steps if st.total_steps is not None else '?'}"]
    lines += [f"{label}: {text}" for label, text in summary_rows(st)]
    for ev in tl.events:
        if ev.get("type") not in ("eval", "epoch"):
            line = _event_line(ev)
            if line is not None:
                lines.append(line)
    lines += [f"skipped: {w}" for w in tl.warnings]
    return [visible(line) for line in lines]


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 0.5 <= args.refresh_hz <= 60:
        raise UserError(f"--refresh-hz: {args.refresh_hz:g} is out of range [0.5, 60]")
    if args.start is not None and args.start < 0:
        raise UserError(f"--start: {args.start} must be >= 0")
    tl = Timeline(args.log)
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        tl.load()
        print("\n".join(summary(tl)))
        return 0
    from schedtui.ui.replay_app import ReplayApp

    ReplayApp(tl, follow=args.follow, refresh_hz=args.refresh_hz, start=args.start).run()
    return 0
