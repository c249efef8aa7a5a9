"""The knob table and the detail line under it.

`KnobTable` lists the view's `knob_rows()`: knob, value, edit, next change,
schedule. Columns take the width their content needs (never less than they
took before, so they do not jump as values change), and the schedule the rest
(cut with "…" when it must be: the detail line has it whole). The selected row
(up/down when the table has focus, or a click) is the knob that `e` and `r`
act on; the table shows as many rows as it is given (`max_rows`) and scrolls to
keep the selection in view. `DetailLine` shows the selected knob's full line:
value with every digit, schedule, edit, next change, range.

Both are `LineWidget`s: a frame repaints only the rows whose text changed, so
the table follows every frame, in step with the charts and the status line.
Textual and rich only; never imports torch.
"""

from __future__ import annotations

from rich.text import Span, Text
from textual.binding import Binding

from schedtui.ui.eventlist import wrap
from schedtui.ui.lines import LineWidget

HEAD = ("knob", "value", "edit", "next change", "schedule")
CAPS = (28, 12, 14, 18)  # the widest the fixed columns get


class KnobTable(LineWidget):
    can_focus = True
    DEFAULT_CSS = "KnobTable { height: auto; }"
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-5)", show=False),
        Binding("pagedown", "move(5)", show=False),
    ]

    def __init__(self, view, **kw):
        super().__init__(**kw)
        self.view = view
        self.max_rows = 8
        self.selected: str | None = None  # a knob's name
        self._top = 0
        self._widths = [len(h) for h in HEAD[:4]]
        self._rows: list | None = None  # this frame's rows (`update`), shared with the detail line

    def rows(self):
        if self._rows is None:
            self._rows = self.view.knob_rows()
        return self._rows

    def update_lines(self) -> None:
        self._rows = None  # a new frame: the view's rows again
        super().update_lines()

    def selected_knob(self) -> str | None:
        rows = self.rows()
        if not rows:
            return None
        if self.selected not in [r.knob for r in rows]:
            self.selected = rows[0].knob
        return self.selected

    def select(self, knob: str) -> None:
        self.selected = knob
        self.update_lines()
        self.app.knob_selected()

    def action_move(self, n: int) -> None:
        rows = self.rows()
        if not rows:
            return
        knobs = [r.knob for r in rows]
        i = knobs.index(self.selected_knob())
        self.selected = knobs[max(0, min(len(knobs) - 1, i + n))]
        self.update_lines()
        self.app.knob_selected()

    def on_click(self, event) -> None:
        rows = self.rows()
        i = self._top + event.y - 1
        if event.y >= 1 and 0 <= i < len(rows):
            self.selected = rows[i].knob
            self.update_lines()
            self.app.knob_selected()

    def get_content_height(self, container, viewport, width: int) -> int:
        return 1 + max(1, min(len(self.rows()), self.max_rows))

    def render(self) -> Text:
        return Text("\n").join(self.text_lines())

    def text_lines(self) -> list[Text]:
        width = self.size.width
        rows = self.rows()
        if width <= 0:
            return []
        cells = [(r.name, r.value, r.edit, r.next) for r in rows]
        for i in range(4):
            self._widths[i] = min(CAPS[i], max([self._widths[i]] + [len(c[i]) for c in cells]))
        w = self._widths
        sched_w = width - 2 - sum(w) - 4 * 2
        out = [self._line(HEAD, w, sched_w, "bold grey62 on grey15")]
        sel = self.selected_knob()
        n = max(1, min(len(rows), self.max_rows))
        idx = [r.knob for r in rows].index(sel) if sel is not None else 0
        self._top = max(0, min(self._top, idx, len(rows) - n), idx - n + 1)
        for r in rows[self._top:self._top + n]:
            chosen = r.knob == sel
            line = self._line((r.name, r.value, r.edit, r.next, r.schedule), w, sched_w,
                              ("reverse" if self.has_focus else "bold") if chosen else "", "▸ " if chosen else "  ")
            if r.edit:
                start = 2 + w[0] + 2 + w[1] + 2
                line.spans.append(Span(start, start + len(r.edit[:w[2]]), "bold yellow"))
            out.append(line)
        return out

    @staticmethod
    def _line(cells, w, sched_w: int, style: str = "", lead: str = "  ") -> Text:
        parts = [lead]
        for cell, cw in zip(cells[:4], w):
            parts.append((cell if len(cell) <= cw else cell[:cw - 1] + "…").ljust(cw) + "  ")
        sched = cells[4]
        if sched_w >= 6:
            parts.append(sched if len(sched) <= sched_w else sched[:sched_w - 1] + "…")
        return Text("".join(parts), style=style, no_wrap=True)


class DetailLine(LineWidget):
    """The selected knob, whole: wrapped to at most two rows."""

    DEFAULT_CSS = "DetailLine { height: auto; max-height: 2; color: $text-muted; }"

    def __init__(self, view, table: KnobTable, **kw):
        super().__init__(**kw)
        self.view, self.table = view, table

    def _text(self) -> str:
        knob = self.table.selected_knob()
        for r in self.table.rows():
            if r.knob == knob:
                return r.detail
        return ""

    def get_content_height(self, container, viewport, width: int) -> int:
        return min(2, len(wrap(self._text(), max(width, 1), 2)))

    def render(self) -> Text:
        return Text("\n").join(self.text_lines())

    def text_lines(self) -> list[Text]:
        width = self.size.width
        if width <= 0:
            return []
        rows = wrap(self._text(), width, 2)
        if len(rows) > 2:
            rows = [rows[0], rows[1][:width - 1] + "…"]
        return [Text(r, no_wrap=True) for r in rows]
