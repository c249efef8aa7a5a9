"""Planned edits: the preset's `[[edits]]` list, and how a run's logged edits become one.

An entry is `{"step", "knob", "op", "value"|"factor"|"spec"}`: what
`KnobSchedules.edit` takes, applied by the engine at exactly that step (it affects
updates step+1 onward, DESIGN.md "Steps, epochs and edits"). A logged `edit` event
carries the same fields plus old/new, so `rerun` and `export --preset` turn a run's
edits into this list and a new run applies them at the same steps. Knob names and
the step range are checked when the run is built (they depend on the model and
data). Pure Python; no torch, textual or rich.
"""

from __future__ import annotations

from schedtui.config.schema import F, shown
from schedtui.schedule.timing import MAX_STEPS
from schedtui.errors import UserError
from schedtui.safe_text import visible

EDIT_ARGS = {"set": "value", "scale": "factor", "schedule": "spec", "revert": None}
EXAMPLE = '[[edits]] step = 100, knob = "lr", op = "set", value = 0.01'


def validate_edits(edits) -> list[dict]:
    """A checked copy of `[[edits]]`, in step order; one-line UserError on the first problem."""
    if not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
        raise UserError(f"edits: expected a list of tables ({EXAMPLE})")
    out = []
    for i, e in enumerate(edits):
        where = f"edits[{i}]"
        op = e.get("op")
        if not isinstance(op, str) or op not in EDIT_ARGS:
            raise UserError(f"{where}.op: {shown(op)} is not one of {', '.join(EDIT_ARGS)}")
        arg = EDIT_ARGS[op]
        allowed = {"step", "knob", "op"} | ({arg} if arg else set())
        extra = sorted(map(str, set(e) - allowed))
        if extra:
            raise UserError(f"{where}.{visible(extra[0])}: unknown key for op {op!r}; valid: {', '.join(sorted(allowed))}")
        item = {"step": F(int, lo=0, hi=MAX_STEPS).check(f"{where}.step", _required(e, "step", where)),
                "knob": F(str).check(f"{where}.knob", _required(e, "knob", where)), "op": op}
        if arg == "spec":
            spec = e.get("spec")
            if not isinstance(spec, dict) or "kind" not in spec:
                raise UserError(f'{where}.spec: expected a table with a kind, e.g. {{ kind = "cosine", end = 1e-4 }}')
            item["spec"] = dict(spec)
        elif arg:
            item[arg] = F(float).check(f"{where}.{arg}", _required(e, arg, where))
        out.append(item)
    steps = [e["step"] for e in out]
    if steps != sorted(steps):
        raise UserError("edits: list them in the order of their steps")
    return out


def _required(table: dict, key: str, where: str):
    if key not in table:
        raise UserError(f"{where}.{key}: missing (required)")
    return table[key]


def planned_edit(ev: dict) -> dict:
    """One logged `edit` event as a planned edit."""
    out = {"step": ev["step"], "knob": ev["knob"], "op": ev["op"]}
    arg = EDIT_ARGS.get(ev["op"]) if isinstance(ev["op"], str) else None
    if arg is not None:
        out[arg] = ev[arg]
    return out


def logged_edits(events) -> list[dict]:
    """Every edit a run applied (planned or live), in the order it applied them; not the lr's SWA phase,
    which starting SWA applies again."""
    return [planned_edit(ev) for ev in events if ev.get("type") == "edit" and ev.get("by") != "swa"]
