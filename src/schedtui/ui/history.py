"""A run's recorded history on the live screen: a resumed run (or an attached screen) shows the whole run.

A source with `history` (see `ui.source`) has its past in a log file. `read(path)`
indexes it with `events.timeline.Timeline` (bounded memory: steps are folded into
a fixed number of buckets, so a million-step log costs what a short one does; run
it off the UI thread, it reads the whole file). `seed(view, timeline)` then folds
it into a `RunView` on the UI thread: the header, the non-step events in order
(edits, evaluations, pauses, SWA: charts, marks, the event list, the state) with
the steps' buckets between them (the mean loss and the knobs' values of each),
and the last step's own event for the state. It returns the last seq it gave the
view, so the app applies only the polled events after it: the file may have grown
past the source's `history_seq` while it was read.

No torch, no textual.
"""

from __future__ import annotations

from schedtui.events.timeline import Timeline


def read(path) -> Timeline:
    """The log at `path`, read as far as it is written (a line still being written waits)."""
    tl = Timeline(path)
    tl.load(final=False)
    return tl


def seed(view, tl: Timeline) -> int:
    """Fold `tl` into `view` (a fresh `RunView`); the last seq the view holds."""
    with tl.lock:
        events = list(tl.events)
        buckets = tl.buckets(tl.last_step)
        width = tl.bucket
        last = tl.step_event(tl.last_step) if tl.last_step else None
    view.apply(tl.header)
    i = 0
    for s0, mean, knobs, _ in buckets:
        while i < len(events) and events[i]["step"] < s0:
            view.apply(events[i])
            i += 1
        view.add_bucket(s0, width, mean, knobs)
    if last is not None:
        while i < len(events) and events[i]["step"] < last.get("step", 0):
            view.apply(events[i])
            i += 1
        view.apply(last, chart=False)  # the state at the last step: its knobs, loss, epoch, time
    for ev in events[i:]:
        view.apply(ev)
    seqs = [ev["seq"] for ev in events[-1:]] + ([last["seq"]] if last is not None and isinstance(last.get("seq"), int) else [])
    head = tl.header.get("seq", 0)
    return max(seqs, default=head if isinstance(head, int) else 0)
