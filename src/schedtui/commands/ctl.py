"""`schedtui ctl RUN COMMAND`: steer a running run from any shell or script, through its control socket.

Each command goes to the run exactly as a key press in its screen would (applied at
the next step boundary, logged with `by: "ctl"`); ctl waits for the event it
produced and prints it as one JSON line (`stop` waits for the run's end and prints
its checkpoint and `end` events; `status` prints a JSON object). Exit status 0: applied;
1: refused by the run (the reason in one line; nothing changed); 2: bad usage, or
no such running run (a run whose process was killed is said to be so, and the
socket it left is removed). Edit values use the edit dialog's syntax
(`schedule.text`). No torch, textual or rich.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

from schedtui.commands import command_parser
from schedtui.control import runs
from schedtui.control.client import Lost, Refused
from schedtui.errors import UserError
from schedtui.schedule.text import parse_edit

EPILOG = """\
commands:
  pause | resume | stop | checkpoint | validate
  set KNOB VALUE             hold KNOB at VALUE from the next step
  scale KNOB FACTOR          multiply KNOB's preset schedule by FACTOR
  schedule KNOB 'SPEC'       a new schedule from here, e.g. 'cosine end=1e-4' or '{kind="StepLR", step_size=5}'
  revert KNOB                back to the preset schedule
  swa start|stop|update_bn
  status                     JSON: state, step, epoch, every knob's value, last metrics, pid

exit status: 0 applied, 1 refused by the run (nothing changed), 2 bad usage or no such running run.

examples:
  schedtui ctl runs/cifar10-20261121-193000 set dropout 0.3
  schedtui ctl runs/cifar10-20261121-193000 schedule lr 'cosine end=1e-4'
  schedtui ctl 3f2a9c0d1e4b status          (a run id, looked up under --runs-dir)
"""

SIMPLE = ("pause", "resume", "stop", "checkpoint", "validate", "status")
EDITS = {"set": "KNOB VALUE", "scale": "KNOB FACTOR", "schedule": "KNOB 'SPEC'", "revert": "KNOB"}
SWA_OPS = ("start", "stop", "update_bn")


def build_parser():
    p = command_parser("ctl", "Steer a running run from another shell or a script (pause, edits, stop, status...).", EPILOG)
    p.add_argument("run", metavar="RUN", help="the run's directory (or its events.jsonl, or its name or run id under --runs-dir)")
    p.add_argument("command", metavar="COMMAND", help="see below")
    p.add_argument("args", nargs="*", metavar="ARG")
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help="where to look a run name or id up (default: ./runs)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="seconds to wait for the run to apply the command (default: 120)")
    return p


def plan(command: str, args: list[str]) -> tuple[str, dict]:
    """(engine command, its arguments) for what was typed; UserError for bad usage."""
    if command in SIMPLE:
        if args:
            raise UserError(f"ctl {command} takes no arguments")
        return command, {}
    if command in EDITS:
        if len(args) != len(EDITS[command].split()):
            raise UserError(f"ctl {command} takes {EDITS[command]}")
        return "edit", {"knob": args[0], "op": command, **parse_edit(command, args[1] if len(args) > 1 else "")}
    if command == "swa":
        if len(args) != 1 or args[0] not in SWA_OPS:
            raise UserError(f"ctl swa takes one of {', '.join(SWA_OPS)}")
        return "swa", {"op": args[0]}
    raise UserError(f"ctl: unknown command {command!r}; valid: {', '.join(SIMPLE + tuple(EDITS) + ('swa',))}")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.timeout > 0:
        raise UserError(f"--timeout: {args.timeout:g} must be > 0")
    command, cmd_args = plan(args.command, args.args)  # bad usage is found before the run is looked at
    run_dir = runs.resolve(args.run, Path(args.runs_dir))
    conn, info = runs.connect(run_dir, "ctl", timeout=args.timeout)
    try:
        if command == "status":
            print(json.dumps(status(conn, info), indent=2))
        elif command == "stop":
            for ev in stop(conn, info.run_dir, args.timeout):
                print(json.dumps(ev))
        else:
            print(json.dumps(conn.request("send", command=command, args=cmd_args)))
    except Refused as e:
        print(f"schedtui: {e}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


def stop(conn, run_dir: Path, timeout: float) -> list[dict]:
    """Stop the run and wait for its end: its final checkpoint and `end` events."""
    seen: list[dict] = []
    conn.request("events", on_event=seen.append, **{"from": 1})
    reply = conn.request("send", on_event=seen.append, command="stop", args={})
    deadline = time.monotonic() + timeout
    while not any(ev.get("type") == "end" for ev in seen):
        if time.monotonic() > deadline:
            raise UserError(f"the run took the stop (at step {reply.get('step')}) but did not end within {timeout:g} s")
        try:
            msg = conn.read()
        except socket.timeout:
            continue
        if msg is None:  # the server closed: the run ended; its end is in the log
            end = runs.tail(run_dir, ()).get("last")
            if end is not None and end.get("type") == "end":
                seen.append(end)
            break
        if "seq" in msg:
            seen.append(msg)
    status = reply.get("status")
    return [ev for ev in seen if ev.get("type") == "end" or (ev.get("type") == "checkpoint" and ev.get("reason") == status)]


def status(conn, info) -> dict:
    """The run now: its state, step, epoch, every knob's value (for the next update), the last metrics, the pid."""
    st = conn.request("status")
    try:
        knobs = {k: v.get("value") for k, v in conn.request("send", command="describe", args={})["knobs"].items()}
    except (Refused, Lost):  # ended meanwhile: the last logged values
        knobs = None
    last = runs.tail(info.run_dir, ("step", "epoch", "eval"))
    step_ev, epoch_ev, eval_ev = last.get("step") or {}, last.get("epoch") or {}, last.get("eval")
    if knobs is None:
        knobs = step_ev.get("knobs", {})
    metrics = {k: v for k, v in epoch_ev.items() if k not in ("seq", "type", "time", "epochs", "elapsed_s", "eta_s")}
    if step_ev:
        metrics = {**metrics, "loss": step_ev.get("loss"), "loss_step": step_ev.get("step")}
    if eval_ev is not None:
        metrics["last_eval"] = {k: v for k, v in eval_ev.items() if k not in ("seq", "type", "time")}
    return {"run_id": st.get("run_id"), "run_dir": str(info.run_dir), "pid": st.get("pid"), "state": st.get("state"),
            "step": st.get("step"), "total_steps": info.total_steps, "epoch": st.get("epoch"),
            "epochs": (info.header.get("config") or {}).get("epochs"), "screens": st.get("screens"),
            "knobs": knobs, "metrics": metrics}
