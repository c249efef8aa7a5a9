"""`schedtui ps [RUNS_DIR]`: the runs there, newest first, and whether each one is still going.

One line per run directory: its name, the pid of the process running it (or -),
its state (running or paused from the run itself; an ended run's status from its
log, `killed` when its process died without an `end` event), step/total, the
screens attached to it, and the command to attach to it (or to replay it). A run
is going when a process holds its log open (`control.runs.log_live`); a control
socket a killed run left behind is removed. Strings from the files are shown
escaped. No torch, textual or rich.
"""

from __future__ import annotations

from pathlib import Path

from schedtui.commands import command_parser
from schedtui.control import runs
from schedtui.errors import UserError
from schedtui.safe_text import visible

EPILOG = """\
examples:
  schedtui ps                 the runs under ./runs
  schedtui ps ~/exp/runs
"""


def build_parser():
    p = command_parser("ps", "List the runs in a directory, newest first: running or not, step, status, screens attached.", EPILOG)
    p.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR", help="default: ./runs")
    return p


def row(info: runs.RunInfo) -> list[str]:
    total = info.total_steps
    name = visible(info.run_dir)
    if info.live and info.record is None:
        return [name, "?", "running", f"{info.step}/{total or '?'}", "-", "(no control socket: an own loop?)"]
    if info.record is not None:  # ask the run itself (a killed run's socket is removed here)
        try:
            conn, _ = runs.connect(info.run_dir, "ps", timeout=2.0)
            with conn:
                st = conn.request("status")
            return [name, visible(st.get("pid")), visible(st.get("state")), f"{st.get('step')}/{total or '?'}",
                    str(st.get("screens", 0)), f"schedtui attach {name}"]
        except (UserError, OSError) as e:
            if info.live:
                return [name, "?", "running", f"{info.step}/{total or '?'}", "-", f"({visible(e)})"]
    return [name, "-", info.status, f"{info.step}/{total or '?'}", "-", f"schedtui replay {name}"]


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    root = Path(args.runs_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: no such directory")
    rows = [row(info) for info in runs.list_runs(root)]
    if not rows:
        print(f"no runs under {visible(root)}")
        return 0
    headers = ["RUN", "PID", "STATUS", "STEP", "SCREENS", "COMMAND"]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers) - 1)]
    for r in [headers, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0
