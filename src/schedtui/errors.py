"""User-facing errors: one line, exit status 2, no traceback.

Anything a person typed or handed us (CLI arguments, presets, --set values, edit
specs, log files) that is wrong raises `UserError` with a message that fits on one
line and says what was expected. The CLI prints `schedtui: <message>` and exits 2.
Pure Python; imports nothing from the project.
"""


class UserError(Exception):
    """A bad input from the user; the message is shown as is, on one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
