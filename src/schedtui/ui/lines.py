"""`LineWidget`: a widget drawn as lines of Rich Text that repaints only the lines that changed.

The live screen redraws about 10 times a second while the training thread runs in
the same process: every millisecond the screen spends holding the GIL is taken
from training (measured in benchmarks/overhead.py). A widget that returns Rich
Text from `render()` is converted whole, every refresh, through Textual's general
text pipeline. A `LineWidget` instead keeps one strip per line: `update_lines()`
(each frame) compares each line's text and spans with the last frame's, converts
only the changed lines (straight to segments, with the same styles Textual's own
conversion gives: the widget's style plus the span's) and repaints only their
regions. A whole `refresh()` (resize, theme, a caller that just wants it redrawn)
rebuilds every line. A line's own style (`Text(..., style=)`) counts as a span
under the others, as when the lines are joined into one Text. A line that does not
fit the width, or has overlapping spans, takes Textual's own path, so the result is
the same either way.

Subclasses give `text_lines()` (a list of Text, one per line); the default splits
`render()`. Textual and rich only; never imports torch.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Span, Text
from textual.content import Content
from textual.geometry import Region
from textual.strip import Strip
from textual.style import Style
from textual.visual import Visual
from textual.widget import Widget


class LineWidget(Widget):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._texts: list[Text] | None = None  # the lines as last built; None: build them at the next render
        self._keys: list = []
        self._strips: list[Strip | None] = []
        self._styles: dict = {}  # span style -> the Textual style it is drawn with
        self._placed: dict = {}  # (span style, x, y) -> the Rich style of a segment there (with its offset)
        self._styled_with = None  # the widget style the caches above were made with

    def text_lines(self) -> list[Text]:
        text = self.render()
        return text.split("\n") if isinstance(text, Text) else [Text(str(text))]

    # ---- each frame --------------------------------------------------------------------------
    def update_lines(self) -> None:
        """Build the lines again and repaint those that changed (all of them when the count changed)."""
        if not self.is_mounted:
            return
        texts = self.text_lines()
        if self._texts is None or len(texts) != len(self._texts):
            relayout = self._texts is not None and self.styles.height is not None and self.styles.height.is_auto
            self._set_texts(texts)
            super().refresh(layout=relayout)
            return
        keys, strips, width = self._keys, self._strips, self.size.width
        changed = []
        for y, text in enumerate(texts):
            key = _key(text)
            if key != keys[y]:
                keys[y], strips[y] = key, None
                changed.append(Region(0, y, width, 1))
        self._texts = texts
        if changed:
            super().refresh(*changed)

    def refresh(self, *regions, repaint: bool = True, layout: bool = False, recompose: bool = False):
        if repaint and not regions:  # a whole repaint: build the lines again when drawn
            self._texts = None
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _set_texts(self, texts: list[Text]) -> None:
        self._texts = texts
        self._keys = [_key(t) for t in texts]
        self._strips = [None] * len(texts)

    # ---- Textual's line API ------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        if self._texts is None:
            self._set_texts(self.text_lines())
        width = self.size.width
        if not 0 <= y < len(self._texts):
            return Strip.blank(width, self.visual_style.rich_style)
        strip = self._strips[y]
        if strip is None:
            strip = self._strips[y] = self._to_strip(self._texts[y], y, width)
        return strip

    def _to_strip(self, text: Text, y: int, width: int) -> Strip:
        if self.visual_style is not self._styled_with:
            self._styles, self._placed, self._styled_with = {}, {}, self.visual_style
        plain = text.plain
        spans = sorted(text.spans)
        if text.cell_len > width or any(a.end > b.start for a, b in zip(spans, spans[1:])):
            return self._textual_strip(text, width)
        outer, placed, place = text.style, self._placed, self._place
        if len(placed) > 8192:
            placed.clear()
        segments, pos = [], 0
        for start, end, style in spans:
            if start > pos:
                key = (outer, None, pos, y)
                segments.append(Segment(plain[pos:start], placed.get(key) or place(key)))
            if end > start:
                key = (outer, style, start, y)
                segments.append(Segment(plain[start:end], placed.get(key) or place(key)))
            pos = max(pos, end)
        if pos < len(plain):
            key = (outer, None, pos, y)
            segments.append(Segment(plain[pos:], placed.get(key) or place(key)))
        return Strip(segments, text.cell_len)

    def _place(self, key: tuple):
        """The Rich style of a segment: the widget's style, the text's, the span's, and the offset (x, y)
        that Textual's own conversion attaches (mouse and selection use it). Kept: lines repeat."""
        outer, style, x, y = key
        st = self.visual_style
        if outer:
            st = st + self._style(outer)
        if style is not None:
            st = st + self._style(style)
        got = self._placed[key] = st.rich_style_with_offset(x, y)
        return got

    def _style(self, style) -> Style:
        """A span's style as Textual draws it (parsed by the app's console, colours through its ANSI theme)."""
        got = self._styles.get(style)
        if got is None:
            rich = self.app.console.get_style(style) if isinstance(style, str) else style
            got = self._styles[style] = Style.from_rich_style(rich, self.app.ansi_theme)
        return got

    def _textual_strip(self, text: Text, width: int) -> Strip:
        if text.style:  # a line's own style counts as a span under the others, as when lines are joined
            text = Text(text.plain, spans=[Span(0, len(text.plain), text.style), *text.spans])
        strips = Visual.to_strips(self, Content.from_rich_text(text, console=self.app.console), width, 1, self.visual_style)
        return strips[0] if strips else Strip.blank(width, self.visual_style.rich_style)


def _key(text: Text):
    return text.plain, tuple(text.spans), text.style
