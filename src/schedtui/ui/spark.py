"""Render a sparkline as Rich Text, with marked columns (where an edit happened).

Textual's Sparkline widget draws bars but cannot mark a point, so charts render
their one line here: values are resampled to the width (mean per column), scaled
between min and max of what is shown, and drawn with block characters; a marked
column is drawn in the mark style. Uses rich only; no torch, no textual.
"""

from __future__ import annotations

from rich.text import Text

BLOCKS = "▁▂▃▄▅▆▇█"


def resample(values: list[float], marks: list[bool], width: int) -> tuple[list[float], list[bool]]:
    """At most `width` columns: the mean of each column's values; a column is marked if any is."""
    n = len(values)
    if n <= width:
        return list(values), list(marks)
    out_v, out_m = [], []
    for c in range(width):
        lo, hi = c * n // width, max((c + 1) * n // width, c * n // width + 1)
        chunk = values[lo:hi]
        out_v.append(sum(chunk) / len(chunk))
        out_m.append(any(marks[lo:hi]))
    return out_v, out_m


def sparkline(values: list[float], marks: list[bool], width: int, style: str = "green", mark_style: str = "bold yellow") -> Text:
    if width <= 0 or not values:
        return Text(" " * max(width, 0))
    vals, mks = resample(values, marks, width)
    lo, hi = min(vals), max(vals)
    span = hi - lo
    chars = [BLOCKS[3 if span <= 0 else min(int((v - lo) / span * (len(BLOCKS) - 1) + 0.5), len(BLOCKS) - 1)] for v in vals]
    return _styled(chars, mks, width, style, mark_style)


def _styled(chars: list[str], marks: list[bool], width: int, style: str, mark_style: str) -> Text:
    """One span per run of equally styled characters (a span per character makes every frame slow)."""
    text = Text()
    start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or marks[i] != marks[start]:
            text.append("".join(chars[start:i]), style=mark_style if marks[start] else style)
            start = i
    text.append(" " * (width - len(chars)))
    return text


def sparkrows(values: list[float], marks: list[bool], width: int, rows: int, style: str = "green",
              mark_style: str = "bold yellow") -> list[Text]:
    """A sparkline `rows` lines tall (top line first): 8 levels per line."""
    if rows <= 1:
        return [sparkline(values, marks, width, style, mark_style)]
    cells, mks = sparkcells(values, marks, width, rows)
    return [_styled(list(chars), mks, width, style, mark_style) for chars in cells]


def sparkcells(values: list[float], marks: list[bool], width: int, rows: int) -> tuple[list[str], list[bool]]:
    """What `sparkrows` draws (rows >= 2), as plain data: each row's characters (top first, without the
    padding to `width`) and the marked columns. The charts build their lines from this directly."""
    vals, mks = resample(values, marks, max(width, 0))
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 0.0)
    span, levels, n = hi - lo, rows * len(BLOCKS), len(BLOCKS)
    heights = [levels // 2 if span <= 0 else max(1, round((v - lo) / span * (levels - 1)) + 1) for v in vals]
    out = []
    for r in range(rows):
        floor = (rows - 1 - r) * n
        out.append("".join(" " if h <= floor else BLOCKS[min(h - floor, n) - 1] for h in heights))
    return out, mks


def runs(marks: list[bool]) -> list[tuple[int, int, bool]]:
    """(start, end, marked) for each run of equal marks."""
    out, start = [], 0
    for i in range(1, len(marks) + 1):
        if i == len(marks) or marks[i] != marks[start]:
            out.append((start, i, marks[start]))
            start = i
    return out
