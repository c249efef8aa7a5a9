"""The event list: the events worth a line (edits, pauses, SWA, checkpoints, warnings...), scrollable, filtered.

Routine events are not listed (a validation each epoch would push an edit off the
list within seconds): the first row is the latest validation of each model, one
line that updates, after the filter's name. The rest lists the view's `entries`
(step, category, style, text), newest at the bottom, long lines wrapped under
their text. Focused (tab, or a click), up/down/pgup/pgdn/home/end scroll it and
the mouse wheel scrolls it anywhere; scrolled back, it stays where it is as new
lines come, and its last row says how many are newer. `f` (the app's key) cycles
the filter (`text.FILTERS`). Textual and rich only; never imports torch.
"""

from __future__ import annotations

import textwrap

from rich.text import Span, Text
from textual.binding import Binding

from schedtui.ui.lines import LineWidget
from schedtui.ui.text import FILTERS

INDENT = 7  # under the text, after the step column


def wrap(text: str, width: int, indent: int = INDENT) -> list[str]:
    """`text` in rows of at most `width`, the rows after the first indented by `indent`."""
    if len(text) <= width or width < indent + 8:
        return [text[:max(width, 1)]]
    body = text.lstrip(" ")
    return textwrap.wrap(body, width, initial_indent=" " * (len(text) - len(body)), subsequent_indent=" " * indent,
                         break_long_words=True, break_on_hyphens=False) or [""]


class EventList(LineWidget):
    can_focus = True
    DEFAULT_CSS = "EventList { height: 1fr; } EventList:focus { background: $boost; }"
    BINDINGS = [
        Binding("up", "scroll_by(1)", "Older", show=False),
        Binding("down", "scroll_by(-1)", "Newer", show=False),
        Binding("pageup", "scroll_by(10)", show=False),
        Binding("pagedown", "scroll_by(-10)", show=False),
        Binding("home", "scroll_by(1000000)", show=False),
        Binding("end", "scroll_by(-1000000)", show=False),
    ]

    def __init__(self, view, **kw):
        super().__init__(**kw)
        self.view = view
        self.filter = 0
        self.scrolled = 0  # rows scrolled back from the newest
        self._wrapped: tuple | None = None  # (key, the wrapped (style, text) rows)

    # ---- what is listed -----------------------------------------------------------------------------
    def filter_name(self) -> str:
        return FILTERS[self.filter][0]

    def cycle_filter(self) -> str:
        self.filter = (self.filter + 1) % len(FILTERS)
        self.scrolled = 0
        self.refresh()
        return self.filter_name()

    def plain(self) -> str:
        """Every listed line that passes the filter, unwrapped (tests read it)."""
        return "\n".join(text for _, text in self._listed())

    def _listed(self) -> list[tuple[str, str]]:
        wanted = FILTERS[self.filter][1]
        return [(style, text) for _, cat, style, text in self.view.entries if wanted is None or cat in wanted]

    def _rows(self, width: int) -> list[tuple[str, str]]:
        key = (self.view.entries_added, id(self.view.entries), self.filter, width)
        if self._wrapped is None or self._wrapped[0] != key:
            rows = [(style, part) for style, text in self._listed() for part in wrap(text, width)]
            old = self._wrapped
            if old is not None and self.scrolled and old[0][1:] == key[1:] and old[0][0] < key[0]:
                self.scrolled += max(0, len(rows) - len(old[1]))  # scrolled back: stay on the same lines
            self._wrapped = (key, rows)
        return self._wrapped[1]

    # ---- scrolling -------------------------------------------------------------------------------------
    def action_scroll_by(self, n: int) -> None:
        rows = self._rows(max(self.size.width, 1))
        body = max(1, self.size.height - 2)
        self.scrolled = max(0, min(self.scrolled + n, max(0, len(rows) - body)))
        self.refresh()

    def on_mouse_scroll_up(self, event) -> None:
        self.action_scroll_by(3)
        event.stop()

    def on_mouse_scroll_down(self, event) -> None:
        self.action_scroll_by(-3)
        event.stop()

    # ---- drawing ---------------------------------------------------------------------------------------
    def render(self) -> Text:
        return Text("\n").join(self.text_lines())

    def text_lines(self) -> list[Text]:
        width, height = self.size.width, self.size.height
        if width <= 0 or height <= 0:
            return []
        name = self.filter_name()
        head = f"{name}: " if name != "all" else ""
        latest = self.view.eval_line() or "no validation yet"
        first = wrap(head + latest, width, 2)[:2]  # the latest validation, whole: one row or two
        lines = [Text(row, spans=[Span(0, min(len(head), len(row)), "bold reverse")] if head and i == 0 else [], style="bold",
                      no_wrap=True) for i, row in enumerate(first)]
        rows = self._rows(width)
        body = height - len(first)
        self.scrolled = min(self.scrolled, max(0, len(rows) - body))
        end = len(rows) - self.scrolled
        if self.scrolled:
            body -= 1
        shown = rows[max(0, end - body):end]
        lines += [Text(text, style=style, no_wrap=True) for style, text in shown]
        lines += [Text("")] * (height - len(first) - len(shown) - (1 if self.scrolled else 0))
        if self.scrolled:
            lines.append(Text(f"↓ {self.scrolled} newer (end)"[:width], style="reverse", no_wrap=True))
        return lines
