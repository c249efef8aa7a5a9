"""The output pane: the last lines the training printed (RUN_DIR/output.log), opened with `o`.

`OutputTail(path)` follows a growing file from where it last read: `read()`
returns the complete lines added since (a first read, or a jump of more than
`MAX_READ` bytes, starts from the last `MAX_READ` bytes: memory and time stay
bounded however much the run prints; a file that shrank, or was replaced, is read
again from its start). `OutputPane` is a Textual `RichLog` that shows them, each
line escaped (control characters, no markup: the training's output is data) and
wrapped, the newest at the bottom, at most `MAX_LINES` kept. The file is written
by `capture` (a print's `[step N]` first) or, after a detach, by the headless
display. Textual and rich only; never imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual.widgets import RichLog

from schedtui.safe_text import visible

MAX_READ = 256 * 1024
MAX_LINES = 1000


class OutputTail:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._offset = 0
        self._ino = None
        self._rest = b""

    def read(self) -> list[str]:
        try:
            st = os.stat(self.path)
            if st.st_ino == self._ino and st.st_size == self._offset:  # the common case each frame: nothing new
                return []
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_ino != self._ino or st.st_size < self._offset:  # new, replaced or truncated: from the start
                    self._ino, self._offset, self._rest = st.st_ino, 0, b""
                if st.st_size - self._offset > MAX_READ:
                    self._offset, self._rest = st.st_size - MAX_READ, b""
                    f.seek(self._offset)
                    f.readline()  # (a partial line)
                else:
                    f.seek(self._offset)
                data = f.read(MAX_READ)
                self._offset = f.tell()
        except OSError:  # not there yet (nothing printed), or unreadable: nothing new
            return []
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        return [line.decode("utf-8", "replace") for line in lines]


class OutputPane(RichLog):
    DEFAULT_CSS = "OutputPane { height: 1fr; border: round $primary-background; overflow-x: hidden; }"

    def __init__(self, **kwargs):
        super().__init__(max_lines=MAX_LINES, wrap=True, markup=False, highlight=False, auto_scroll=True, **kwargs)
        self.tail: OutputTail | None = None
        self.border_title = "output"

    def follow(self, path: Path) -> None:
        """Show the lines of the file at `path` (each `pull()` takes what it gained)."""
        if self.tail is None or self.tail.path != Path(path):
            self.tail = OutputTail(path)
            self.clear()
            self.border_title = f"{visible(Path(path).name)} · o: the charts"

    def pull(self) -> list[str]:
        """Take the file's new lines into the pane; the lines (for a hint that output came)."""
        if self.tail is None:
            return []
        lines = self.tail.read()
        for line in lines:
            self.write(Text(visible(line.rstrip("\r"))))
        return lines
