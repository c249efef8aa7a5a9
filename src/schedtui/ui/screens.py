"""Small modal screens: help (every key) and the quit confirmation. No torch."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

KEYS = [
    ("space", "pause / resume (at the next step boundary)"),
    ("e", "edit the selected knob: set, scale, or a new schedule"),
    ("r", "revert the selected knob to its preset schedule"),
    ("up/down", "select a knob (scroll the event list when it has focus)"),
    ("v", "validate now"),
    ("c", "checkpoint now"),
    ("w", "start SWA (lr to its SWA phase, weights averaged); stop"),
    ("b", "update_bn on the SWA model, then evaluate it"),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "this help"),
    ("q", "quit (asks first while the run goes; the log gets its end)"),
]


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str]] = KEYS):
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        width = max(8, *(len(k) for k, _ in self.keys))
        text = Text()
        for i, (k, what) in enumerate(self.keys):
            text.append(("\n" if i else "") + f"{k:>{width}}", style="bold")
            text.append(f"  {what}")
        with Vertical(id="help-box"):
            yield Label(Text("schedtui keys", style="bold"))
            with VerticalScroll(id="help-scroll"):
                yield Static(text, id="help-keys")
            yield Label(Text("escape closes", style="grey62"))


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label("The run is still going. Stop it and quit?  [b]y[/b]/[b]n[/b]")
            with Horizontal():
                yield Button("Stop and quit", variant="error", id="yes")
                yield Button("Keep running", id="no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")
