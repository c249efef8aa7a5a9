"""The edit dialog: set a knob now, scale its schedule, or give a new schedule from here.

Every keystroke is parsed (pure, `schedule.text`) and, when it reads, sent to the
run as a `preview` query: the dialog shows the curve before and after and the value
the next update will use. Only a previewed edit can be applied; any problem
(text, NaN, out of range, unknown kind or argument) is shown in the dialog and
nothing changes. Dismisses with the applied edit event, or None. The knob's name,
its schedule and every error are shown as plain text with control characters made
visible. No torch.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from schedtui.errors import UserError
from schedtui.safe_text import visible
from schedtui.schedule.text import parse_edit
from schedtui.ui.plot import tick_labels
from schedtui.ui.spark import sparkline
from schedtui.ui.view import fmt


def _range(values: list) -> str:
    """min..max with the digits that tell them apart (0.0996..0.1, not 0.1..0.1)."""
    lo, hi = min(values), max(values)
    if lo == hi:
        return fmt(lo)
    a, b = tick_labels([lo, hi], hi - lo)
    return f"{a}..{b}"

OPS = ("set", "scale", "schedule")
HINTS = {
    "set": "a value to hold from the next step, e.g. 0.3",
    "scale": "a factor for the preset schedule, e.g. 0.5",
    "schedule": "kind and arguments from here, e.g. cosine end=1e-4   StepLR step_size=5 gamma=0.5",
}


class EditDialog(ModalScreen):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply", show=False)]

    def __init__(self, source, knob: str, info: dict, current):
        super().__init__()
        self.source, self.knob, self.info, self.current = source, knob, info, current
        self.op = "set"
        self.args: dict | None = None
        self._token = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-box"):
            yield Label(Text.assemble(("Edit ", ""), (visible(self.knob), "bold"), f"   now {fmt(self.current)}   ",
                                      (visible(self.info.get("schedule", "")), "grey62")), id="edit-title")
            with RadioSet(id="edit-op"):
                for op in OPS:
                    yield RadioButton(op, value=op == "set", id=f"op-{op}")
            yield Input(placeholder=HINTS["set"], id="edit-input")
            yield Static("", id="edit-preview")
            yield Static("", id="edit-error")
            with Horizontal(id="edit-buttons"):
                yield Button("Apply", variant="primary", id="edit-apply", disabled=True)
                yield Button("Cancel", id="edit-cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(RadioSet.Changed, "#edit-op")
    def _op_changed(self, event: RadioSet.Changed) -> None:
        self.op = OPS[event.index]
        inp = self.query_one(Input)
        inp.placeholder = HINTS[self.op]
        inp.focus()
        self._refresh_preview(inp.value)

    @on(Input.Changed, "#edit-input")
    def _text_changed(self, event: Input.Changed) -> None:
        self._refresh_preview(event.value)

    @on(Input.Submitted, "#edit-input")
    def _submitted(self) -> None:
        self.run_worker(self.action_apply(), exclusive=True, group="apply")

    @on(Button.Pressed, "#edit-apply")
    def _apply_pressed(self) -> None:
        self.run_worker(self.action_apply(), exclusive=True, group="apply")

    @on(Button.Pressed, "#edit-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _show_error(self, message: str) -> None:
        self.args = None
        self.query_one("#edit-error", Static).update(Text(visible(message), style="bold red"))
        self.query_one("#edit-apply", Button).disabled = True

    def _refresh_preview(self, text: str) -> None:
        self._token += 1
        token = self._token
        self.query_one("#edit-preview", Static).update("")
        if not text.strip():
            self._show_error("")
            return
        try:
            args = parse_edit(self.op, text)
        except UserError as e:
            self._show_error(str(e))
            return
        self.run_worker(self._preview(token, args), exclusive=True, group="preview")

    async def _preview(self, token: int, args: dict) -> None:
        try:
            result = await asyncio.wrap_future(self.source.send("preview", knob=self.knob, op=self.op, **args))
        except UserError as e:
            if token == self._token:
                self._show_error(str(e))
            return
        if token != self._token:  # the text changed meanwhile
            return
        self.args = args
        width = 48
        marks = [False] * len(result["before"])
        lines = Text()
        lines.append("before ", style="grey62")
        lines.append_text(sparkline(result["before"], marks, width, style="grey62"))
        lines.append(f" {_range(result['before'])}\n", style="grey62")
        lines.append("after  ", style="bold")
        lines.append_text(sparkline(result["after"], [False] * len(result["after"]), width, style="cyan"))
        lines.append(f" {_range(result['after'])}\n")
        lines.append(f"next step: {fmt(result['old'])} -> {fmt(result['new'])}  (from step {result['from_step']} to the end)")
        self.query_one("#edit-preview", Static).update(lines)
        self.query_one("#edit-error", Static).update("")
        self.query_one("#edit-apply", Button).disabled = False

    async def action_apply(self) -> None:
        if self.args is None:
            if not self.query_one("#edit-error", Static).visual:
                self._show_error("type a value first")
            return
        try:
            ev = await asyncio.wrap_future(self.source.send("edit", knob=self.knob, op=self.op, **self.args))
        except UserError as e:
            self._show_error(str(e))
            return
        self.dismiss(ev)
