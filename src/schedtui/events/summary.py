"""A run's summary as rows of text: what the headless end-of-run table and replay's summary both print.

`summary_rows(state)` turns the one fold (`RunState`) into (label, text) rows, so
the two summaries say the same thing about the same log: how the run ended and
why, epochs and steps (and any steps a resume superseded), the last training
loss, the validation of the model the run ended with (after early stopping
restored the best weights: the restored model's, and it says so), the best
validation and the metric it is best by, each averaged model's (SWA, EMA) own
last validation, edits, warnings and training time. `diff` compares the same facts
as raw values (`RunState.finals`).

The text is not escaped: a string from the log (a status, a reason, a model's
name) comes through as it is, and each caller escapes for its terminal. Pure
Python; no torch, textual or rich.
"""

from __future__ import annotations

from schedtui.events.state import RunState


def number(v, spec: str = ".4g") -> str:
    """A logged number for a summary; a regression's NaN accuracy as none; anything else a damaged log holds, as text."""
    if v is None:
        return "-"
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return str(v)
    if spec.endswith("%") and v != v:
        return "-"
    return format(v, spec)


def _loss_acc(ev: dict | None) -> tuple[str, str]:
    ev = ev or {}
    return number(ev.get("loss")), number(ev.get("acc"), ".2%")


def summary_rows(st: RunState) -> list[tuple[str, str]]:
    end = st.end or {}
    rows = [("status", st.status if st.end is not None else f"{st.status}; no end event (still running, or killed)")]
    if end.get("reason"):
        rows.append(("why", str(end["reason"])))
    if st.error:
        rows.append(("error", str(st.error)))
    total = f"/{st.total_steps}" if st.total_steps else ""
    rows += [("epochs", f"{st.epochs_completed}/{st.epochs}"), ("steps", f"{st.step}{total}")]
    if st.superseded:
        spans = ", ".join(f"{a}..{b}" for a, b in st.superseded)
        rows.append(("superseded", f"steps {spans}: logged before a resume from an earlier checkpoint, then run again"))
    rows.append(("last train loss", number(st.loss)))
    final = st.final_eval
    loss, acc = _loss_acc(final)
    if st.restored_best:
        note = " (the best weights, restored)" if final is not None else " (the restored best weights were not evaluated)"
        loss, acc = loss + note, acc + note
    rows += [("val loss", loss), ("val accuracy", acc)]
    if st.best_metric is not None:
        b_loss, b_acc = number(st.best_val_loss), number(st.best_val_acc, ".2%")
        rows.append(("best val", f"loss {b_loss}, accuracy {b_acc} at step {number(st.best_step)} (by {st.best_metric})"))
    for m, ev in st.averaged().items():
        rows.append((f"{m} val loss / accuracy", " / ".join(_loss_acc(ev))))
    rows += [("edits", str(st.edits)), ("warnings", str(len(st.warnings))),
             ("elapsed", f"{number(st.run_seconds, '.1f')} s")]
    return rows
