"""The status lines at the top of the live screen: what the run is doing now, and what it costs.

Row 1: preset, device, the state (RUNNING, PAUSED, SWA, DONE, ...), epoch and step
with a progress bar, and what the run is (a rerun of another). Row 2: samples/s,
elapsed, ETA, a note (stopping...) and the resource line (`ui.resources`). Parts
that do not fit are dropped from the least useful (the bar first), never the
state, the step or the ETA. Strings from the run (preset, device, run id) are made
visible. Textual and rich only; never imports torch.
"""

from __future__ import annotations

from rich.text import Text

from schedtui.safe_text import visible
from schedtui.ui.lines import LineWidget
from schedtui.ui.text import fmt

STATE_STYLE = {"RUNNING": "bold green", "PAUSED": "bold yellow", "SWA": "bold cyan", "DONE": "bold blue",
               "CRASHED": "bold red", "STOPPED": "bold magenta", "STARTING": "bold", "INTERRUPTED": "bold magenta"}


def clock(seconds) -> str:
    if not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def display_state(view) -> str:
    st = view.state
    if st is None:
        return "STARTING"
    if st.status == "running" and st.swa:
        return "SWA"
    return {"running": "RUNNING", "paused": "PAUSED", "completed": "DONE", "crashed": "CRASHED",
            "stopped": "STOPPED", "interrupted": "INTERRUPTED"}.get(st.status, visible(st.status).upper())


def fit(parts: list[tuple[str, str, int]], width: int) -> Text:
    """(text, style, priority) in order; drop the lowest priority parts until the rest fits `width`."""
    keep = list(parts)
    while sum(len(p[0]) for p in keep) > width and any(p[2] > 0 for p in keep):
        low = min((p for p in keep if p[2] > 0), key=lambda p: -p[2])
        keep.remove(low)
    t = Text(no_wrap=True)
    for text, style, _ in keep:
        t.append(text, style=style)
    return t


class StatusBar(LineWidget):
    DEFAULT_CSS = "StatusBar { height: 2; }"

    def __init__(self, view, **kw):
        super().__init__(**kw)
        self.view = view
        self.starting = "starting (loading torch and the data)..."
        self.note = ""  # e.g. stopping...
        self.resources = None  # a Resources, when the run is this process (live)

    def render(self) -> Text:
        return Text("\n").join(self.text_lines())

    def text_lines(self) -> list[Text]:
        width = max(self.size.width, 1)
        v, st = self.view, self.view.state
        if st is None:
            return [fit([(" STARTING ", "reverse bold", 0), (f" {self.starting}", "", 0)], width), Text("")]
        state = display_state(v)
        total = st.total_steps or 0
        frac = min(st.step / total, 1.0) if total else 0.0
        filled = int(frac * 12)
        source = (v.header or {}).get("source")
        row1 = [(f"{visible(st.preset)} ", "bold", 0), (f"{visible(st.device)} ", "", 2), (f" {state} ", f"reverse {STATE_STYLE.get(state, '')}", 0),
                (f"  ep {min(st.epoch + 1, st.epochs) if st.epochs else st.epoch + 1}/{st.epochs} ", "", 0),
                ("━" * filled, "green", 3), ("━" * (12 - filled), "grey37", 3),
                (f" step {st.step}/{total or '?'}", "", 0)]
        if isinstance(source, dict):
            row1.append((f"  rerun of {visible(source.get('run_id'))}", "cyan", 1))
        sps = st.samples_per_s
        row2 = [(f"{fmt(sps, '.0f') if sps is not None else '-'} samples/s", "", 1),
                (f"  elapsed {clock(st.elapsed_s)}", "", 0)]
        if st.status == "running":
            row2.append((f"  ETA {clock(st.eta_s)}", "bold", 0))
        if self.note and st.end is None:
            row2.append((f"  {self.note}", "bold yellow", 0))
        res = self.resources.sample() if self.resources is not None else None
        if res:
            row2.append((f"  ·  {res}", "grey62", 2))
        return [fit(row1, width), fit(row2, width)]
