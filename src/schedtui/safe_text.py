"""Strings from outside (a log, a preset, user code) made safe to show on a terminal.

A log and a preset are data: a run name, a warning message or a knob label can
hold terminal control sequences (OSC 52 writes the clipboard, OSC 0 the window
title, `ESC[2J` clears the screen) or Rich markup (`[link=...]`). Every string
that did not come from schedtui's own code goes through one of these before it
reaches a terminal:

- `visible(s)`: control and invisible formatting characters (C0/C1 controls,
  DEL, bidi overrides, zero-width and line/paragraph separators) become their
  escaped form (`\\x1b`, `\\n`, `\\u202e`), so the text shows what it holds and
  stays on one line. Anything that is not a `str` is shown by `str()` first.
- `markup(s)`: `visible(s)` with Rich markup escaped, for text placed inside a
  Rich/Textual markup string.

Pure Python (rich is imported only by `markup`); no torch or textual.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls and DEL, C1 controls, and the invisible format characters that reorder or hide text
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def visible(s) -> str:
    """`s` with every control or invisible formatting character shown as an escape; one line."""
    text = s if isinstance(s, str) else str(s)
    if text.isprintable() and text.isascii():  # the common case: nothing to do
        return text
    text = _UNSAFE.sub(_escape, text)
    if not text.isprintable():  # other non-printing code points (unassigned, private use, surrogates)
        text = "".join(c if c.isprintable() or c == " " or unicodedata.category(c) == "Zs" else _escape_char(c) for c in text)
    return text


def _escape_char(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else (f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")


def markup(s) -> str:
    """`visible(s)` with Rich markup escaped: safe to put inside a markup string."""
    from rich.markup import escape

    return escape(visible(s))
