"""The headless display: Rich progress while a run goes, a summary table at the end.

Reads the engine's events from a subscription queue about 10 times a second (never
per step) on the main thread. With no terminal, prints one line per epoch instead
of a live bar. A pause for a non-finite loss cannot be resumed without a screen,
so headless stops the run then. Ctrl-C stops the run at the next step boundary with
status `interrupted` (a second Ctrl-C abandons it); so do SIGTERM and SIGHUP, through
the CLI's `Interrupts` handlers, which this display only reports. Every string
that came from the preset, the log or user code (the run's name, warning and
error messages, metric values, paths) goes through `schedtui.safe_text` before
Rich sees it: control characters shown, markup escaped. The summary table's rows
are `events.summary`'s, the ones replay prints, from the one fold (for a resumed
run, the fold of its whole log). Imports rich; never imports textual. torch only
via the engine object it is handed.
"""

from __future__ import annotations

import queue
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from schedtui.errors import UserError
from schedtui.events.state import RunState
from schedtui.events.summary import summary_rows
from schedtui.events.timeline import Timeline
from schedtui.safe_text import markup, visible


def _fmt(v, spec=".4g") -> str:
    """A number for display; anything else (a string user code put in a metric) shown as text."""
    if v is None or (spec.endswith("%") and v != v):  # no accuracy (a regression's NaN) reads as none
        return "-"
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return visible(v)
    return format(v, spec)


def run_headless(engine, events: queue.SimpleQueue, state: RunState, console: Console, refresh_hz: float = 10.0,
                 interrupts=None) -> RunState:
    live = console.is_terminal
    progress = Progress(
        TextColumn("[bold]{task.fields[preset]}[/] {task.fields[epoch]}/{task.fields[epochs]}"),
        BarColumn(bar_width=16),
        TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[sps]}/s"),
        TimeRemainingColumn(compact=True),
        console=console,
        disable=not live,
    )
    task = progress.add_task("train", total=state.total_steps, preset=markup(state.preset), epoch=0, epochs=state.epochs,
                             loss="-", lr="-", sps="-")
    interrupted = False
    with progress:
        while True:
            try:
                drain(engine, events, state, progress if live else None, console)
                progress.update(task, completed=state.step, epoch=min(state.epoch + 1, state.epochs),
                                loss=_fmt(state.loss), lr=_fmt(state.knobs.get("lr"), ".3g"), sps=_fmt(state.samples_per_s, ".0f"))
                if interrupts is not None and interrupts.signum is not None and not interrupted:
                    interrupted = True  # the handler has asked the engine to stop
                    console.print(f"[yellow]{interrupts.name}: stopping at the next step and saving a checkpoint"
                                  f"{' (Ctrl-C again to abandon)' if interrupts.name == 'SIGINT' else ''}[/]")
                if state.end is not None or (engine.status not in ("ready", "running", "paused") and not engine.running):
                    drain(engine, events, state, progress if live else None, console)
                    break  # the run ended (a data-parallel rank other than 0 has no events to say so)
                time.sleep(1.0 / refresh_hz)
            except KeyboardInterrupt:  # without the CLI's handlers (or a second Ctrl-C through them)
                if interrupted:
                    raise
                interrupted = True
                console.print("[yellow]stopping at the next step (Ctrl-C again to abandon)[/]")
                engine.send("stop", status="interrupted")
    engine.join()
    console.print(summary_table(_whole_run(state, engine.run_dir), engine.run_dir))
    return state


def _whole_run(state: RunState, run_dir) -> RunState:
    """What the summary shows: this fold, or for a resumed run (whose events here began at the resume) the fold
    of its whole log, read back as replay reads it."""
    if not state.partial:
        return state
    try:
        tl = Timeline(run_dir / "events.jsonl")
        tl.load()
    except UserError:  # no log to read back: what was seen here
        return state
    return tl.state


def fold(events, state: RunState, said=None) -> None:
    """Fold what the run emitted since the last call into `state`; `said(ev)` for each event but steps. Of
    consecutive step events only the last is folded: a step sets what the latest one holds (step, loss, knobs,
    rate, ETA), and folding each of thousands a second held the GIL the training thread needs."""
    step = None
    while True:
        try:
            ev = events.get_nowait()
        except queue.Empty:
            if step is not None:
                state.apply(step)
            return
        if ev["type"] == "step":
            step = ev
            continue
        if step is not None:
            state.apply(step)
            step = None
        state.apply(ev)
        if said is not None:
            said(ev)


def drain(engine, events, state: RunState, progress, console: Console) -> None:
    """`fold`, printing the lines of what happened (epochs, SWA, warnings...)."""
    out = progress.console if progress is not None else console
    colour = out.is_terminal

    def said(ev: dict) -> None:
        t = ev["type"]
        if t == "epoch":
            averaged = "".join(f"  {visible(m)} {_fmt(e.get('acc'), '.2%')}" for m, e in state.evals.items()
                               if m != "raw" and e.get("step") == ev["step"])
            line = (f"epoch {ev['epoch'] + 1}/{ev['epochs']}  train loss {_fmt(ev.get('train_loss'))}  "
                    f"val loss {_fmt(ev.get('val_loss'))}  val acc {_fmt(ev.get('val_acc'), '.2%')}{averaged}  "
                    f"{_fmt(ev.get('samples_per_s'), '.0f')} samples/s")
            if colour:
                out.print(line, markup=False)
            else:  # a log file or pipe: the plain line, unwrapped, without Rich's rendering (a fast run prints
                # dozens of these a second, and every one holds the GIL the training thread needs)
                out.file.write(line + "\n")
                out.file.flush()
        elif t == "swa" and ev.get("op") in ("start", "stop", "update_bn"):
            out.print(f"[cyan]step {ev['step']}: SWA {ev['op'].replace('_', ' ')}[/]")
        elif t == "early_stop":
            out.print(f"[magenta]step {ev['step']}: early stopping ({markup(ev['metric'])} no better for "
                      f"{markup(ev['evaluations_without_improvement'])} evaluations)[/]")
        elif t == "warning":
            out.print(f"[yellow]warning:[/] {markup(ev['message'])}")
        elif t == "error":
            out.print(f"[red]error:[/] {markup(ev['message'])} (traceback in {markup(ev.get('traceback_file'))})")
        elif t == "pause" and (ev.get("disk") or ev.get("by") == "disk"):  # a full disk: the run goes on by itself once it can write
            print(f"schedtui: paused at step {ev.get('step')}: {visible(ev.get('reason'))}", file=sys.stderr, flush=True)
        elif t == "resume" and (ev.get("reason") or ev.get("by") == "disk"):
            print(f"schedtui: resumed at step {ev.get('step')}: {visible(ev.get('reason'))}", file=sys.stderr, flush=True)
        elif t == "pause" and ev.get("reason") != "user":
            out.print(f"[yellow]paused ({markup(ev.get('reason'))}); no screen to resume from in headless mode: stopping[/]")
            engine.send("stop")

    fold(events, state, said)


def summary_table(state: RunState, run_dir) -> Table:
    """The end-of-run table (`events.summary`: the rows replay's summary prints too); every cell is markup, so
    every string from outside is escaped."""
    t = Table(title=f"schedtui {markup(state.preset)}: {markup(state.status)}", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in [*summary_rows(state), ("log", str(run_dir / "events.jsonl"))]:
        t.add_row(markup(k), markup(v))
    return t
