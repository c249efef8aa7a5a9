"""The notice line: confirmations, refusals and alerts where they hide nothing.

Toasts cover the knob table exactly when a person checks an edit there; this one
line above the footer says the same (`show(text, severity)`), stays until the
next notice, and dims after a while. The app's `notify` comes here. Everything
shown is made visible (control characters escaped) and drawn as plain text, never
parsed as markup; a text longer than the line wraps onto a second row. Textual
and rich only; never imports torch.
"""

from __future__ import annotations

import time

from rich.text import Span, Text

from schedtui.safe_text import visible
from schedtui.ui.eventlist import wrap
from schedtui.ui.lines import LineWidget

STYLE = {"information": "bold", "warning": "bold yellow", "error": "bold red", "hint": "grey62"}
DIM_AFTER_S = 20.0


class NoticeLine(LineWidget):
    DEFAULT_CSS = "NoticeLine { height: auto; max-height: 2; }"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.text = ""
        self.severity = "hint"
        self.shown_at = 0.0
        self.history: list[tuple[float, str, str]] = []  # (time, severity, text), the last 50

    def show(self, text: str, severity: str = "information") -> None:
        self.text = " ".join(visible(part) for part in str(text).splitlines())
        self.severity = severity if severity in STYLE else "information"
        self.shown_at = time.monotonic()
        self.history = (self.history + [(time.time(), self.severity, self.text)])[-50:]
        self.update_lines()

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, min(2, len(wrap(self._line(), max(width, 1), 2))))

    def _line(self) -> str:
        if not self.text:
            return ""
        stamp = time.strftime("%H:%M:%S ", time.localtime(self.history[-1][0])) if self.severity != "hint" else ""
        return stamp + self.text

    def render(self) -> Text:
        return Text("\n").join(self.text_lines())

    def text_lines(self) -> list[Text]:
        width = self.size.width
        if width <= 0:
            return []
        rows = wrap(self._line(), width, 2)
        if len(rows) > 2:
            rows = [rows[0], rows[1][:width - 1] + "…"]
        old = self.severity != "hint" and time.monotonic() - self.shown_at > DIM_AFTER_S
        style = "grey62" if old else STYLE[self.severity]
        stamp = 9 if self.severity != "hint" and self.text else 0
        out = []
        for i, r in enumerate(rows):
            spans = [Span(0, min(stamp, len(r)), "grey50")] if i == 0 and stamp else []
            out.append(Text(r, style=style, spans=spans, no_wrap=True))
        return out
