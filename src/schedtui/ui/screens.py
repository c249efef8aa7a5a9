"""Small modal screens: help (every key) and the quit question (detach, stop or cancel). No torch."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from schedtui.safe_text import markup

KEYS = [
    ("space", "pause / resume (at the next step boundary)"),
    ("e", "edit the selected knob: set, scale, or a new schedule"),
    ("r", "revert the selected knob to its preset schedule"),
    ("up/down", "select a knob (scroll the event list when it has focus)"),
    ("v", "validate now"),
    ("c", "checkpoint now"),
    ("w", "start SWA (lr to its SWA phase, weights averaged); stop"),
    ("b", "update_bn on the SWA model, then evaluate it"),
    ("o", "the training's output (RUN_DIR/output.log) in the charts' place; again: the charts"),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "this help"),
    ("q", "quit: while the run goes, asks: detach (it goes on), stop (checkpoint and end), or cancel"),
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


class QuitDialog(ModalScreen["str | None"]):
    """`q` while the run goes: "detach" (the screen closes, the run goes on), "stop" (a checkpoint, then the
    run ends) or None (cancel)."""

    BINDINGS = [Binding("d", "answer('detach')", "Detach"), Binding("s", "answer('stop')", "Stop"),
                Binding("c,escape,q", "answer(None)", "Cancel")]

    def __init__(self, attach_hint: str):
        """`attach_hint`: the command that brings the screen back (plain text: escaped here)."""
        super().__init__()
        self.attach_hint = attach_hint

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label("The run is still going.")
            yield Label(f"[b]d[/b]  detach: close this screen, the run goes on; {markup(self.attach_hint)} brings it back")
            yield Label("[b]s[/b]  stop: checkpoint and end the run (schedtui resume continues it)")
            yield Label("[b]c[/b]  cancel: back to the screen")
            with Horizontal():
                yield Button("Detach", variant="primary", id="detach")
                yield Button("Stop the run", variant="error", id="stop")
                yield Button("Cancel", id="cancel")

    def action_answer(self, what: str | None) -> None:
        self.dismiss(what)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)
