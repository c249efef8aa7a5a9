"""Events and numbers as the screen (and replay's printed summary) words them: one line each, safe to show.

Every string that came from a log, a preset or user code (knob names, messages,
paths, reasons, edit specs) passes through `safe_text.visible` here, so a line
shows control characters as escapes; the widgets draw these lines as plain Rich
Text (never parsed as markup). `category` sorts the listed events for the event
list's filter; routine events (a validation each epoch, SWA's averaging updates,
steps) are not listed: the charts and the list's latest-validation line show them.
Pure: no torch, no textual.
"""

from __future__ import annotations

from schedtui.safe_text import visible

# filter name -> the categories it shows (None: every category)
FILTERS = (("all", None), ("edits", {"edit"}), ("pauses", {"pause"}), ("SWA", {"swa"}),
           ("checkpoints", {"checkpoint"}), ("problems", {"problem"}))


def fmt(v, spec: str = ".4g") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return visible(v)
    if isinstance(v, float) and v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return format(v, ".2e" if spec in (".3g", ".4g") else ".3e")
    return format(v, spec)


def full(v) -> str:
    """A number with every digit it needs (for a detail line), anything else made visible."""
    if isinstance(v, float):
        return format(v, ".8g")
    return fmt(v)


def routine(ev: dict) -> bool:
    """Events that come every step or epoch: charted, not listed."""
    t = ev.get("type")
    return t in ("step", "epoch") or (t == "eval" and ev.get("reason") == "epoch") or (t == "swa" and ev.get("op") == "update")


def category(ev: dict) -> str | None:
    """The event list's category of an event it lists, or None."""
    t = ev.get("type")
    if routine(ev) or t not in _CATEGORY:
        return None
    return _CATEGORY[t]


_CATEGORY = {"edit": "edit", "pause": "pause", "resume": "pause", "swa": "swa", "checkpoint": "checkpoint",
             "warning": "problem", "error": "problem", "early_stop": "problem", "end": "problem", "eval": "eval"}


def event_line(ev: dict) -> tuple[str, str] | None:
    """(style, text) for an event, or None for events that have no line (steps, epochs, SWA updates)."""
    got = _line(ev)
    return None if got is None else (got[0], visible(got[1]))


def _line(ev: dict) -> tuple[str, str] | None:
    t, step = ev.get("type"), ev.get("step")
    where = f"{step:>6} " if isinstance(step, int) else f"{visible(step):>6} "
    if t == "edit":
        op = ev.get("op")
        how = {"set": "set", "revert": "revert"}.get(op, op)
        if op == "scale":
            how = f"x{fmt(ev.get('factor'), '.3g')}"
        elif op == "schedule":
            spec = ev.get("spec")
            how = str(spec.get("kind", "schedule")) if isinstance(spec, dict) else "schedule"
        by = f" (by {ev['by']})" if ev.get("by") not in (None, "ui") else (" (planned)" if ev.get("planned") else "")
        return "cyan", f"{where}{ev.get('knob')} {fmt(ev.get('old'), '.3g')}→{fmt(ev.get('new'), '.3g')} {how}{by}"
    if t == "pause":
        return "yellow", f"{where}paused ({ev.get('reason', 'user')})"
    if t == "resume":
        if "checkpoint" in ev:
            return "bold green", f"{where}resumed from {str(ev['checkpoint']).rsplit('/', 1)[-1]}"
        return "green", f"{where}resumed"
    if t == "eval":
        why = f" ({ev.get('reason')})" if ev.get("reason") not in (None, "epoch") else ""
        model = ev.get("model", "raw")
        which = "" if model == "raw" else f" {model}"
        acc = ev.get("acc")
        acc_s = f" acc {fmt(acc, '.1%')}" if isinstance(acc, (int, float)) and acc == acc else ""  # none for a regression
        return "" if model == "raw" else "cyan", f"{where}val{which} {fmt(ev.get('loss'), '.3g')}{acc_s}{why}"
    if t == "swa":
        op = ev.get("op")
        if op == "start":
            return "bold cyan", f"{where}SWA started (averaging every {ev.get('update_every', 1)} {ev.get('update_unit', 'epoch')})"
        if op == "stop":
            return "cyan", f"{where}SWA stopped ({ev.get('n_averaged')} averaged)"
        if op == "update_bn":
            return "cyan", f"{where}SWA update_bn"
        return None  # updates: too many to list; the chart shows them
    if t == "early_stop":
        restored = ", best weights restored" if ev.get("restored") else ""
        return "bold magenta", (f"{where}early stop: {ev.get('metric')} no better for {ev.get('evaluations_without_improvement')}"
                                f" evals; best {fmt(ev.get('best'), '.4g')} @{ev.get('best_step')}{restored}")
    if t == "checkpoint":
        return "magenta", f"{where}checkpoint {ev.get('path')}"
    if t == "warning":
        return "bold yellow", f"{where}warning: {ev.get('message')}"
    if t == "error":
        return "bold red", f"{where}error: {ev.get('message')} (traceback: {ev.get('traceback_file')})"
    if t == "end":
        why = f" ({ev['reason']})" if ev.get("reason") else ""
        return "bold", f"{where}run {ev.get('status')}{why}"
    return None


def eval_line_of(evals: dict) -> str | None:
    """The latest validation of each model in one line: `val 0.312 91.5% · swa 0.30 92.1% @1200`."""
    parts, step = [], None
    for model in ("raw", "swa", "ema"):
        ev = evals.get(model)
        if ev is None:
            continue
        acc = ev.get("acc")
        acc_s = f" {fmt(acc, '.1%')}" if isinstance(acc, (int, float)) and acc == acc else ""
        parts.append(f"{'val' if model == 'raw' else model} {fmt(ev.get('loss'), '.3g')}{acc_s}")
        step = ev.get("step") if step is None else max(step, ev.get("step") or 0)
    if not parts:
        return None
    return visible(" · ".join(parts) + (f" @{step}" if step is not None else ""))
